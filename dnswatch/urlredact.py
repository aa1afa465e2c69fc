"""URLs as they may be shown: credentials in a feed URL stay in the request, never in a message.

A feed URL may carry a password (`https://user:PASS@host/feed`) or a token in its query string
(`?token=...&key=...`). Everything that shows a URL — log lines, error conditions, the feed's status in
Kubernetes and in the store, the consumer API and CLI — shows `redacted_url(url)` instead:

    >>> redacted_url("https://user:hunter22@feeds.example/c2.txt?token=abc&fmt=txt")
    'https://user:***@feeds.example/c2.txt?token=***&fmt=***'

Every query value is hidden, not only those whose name sounds secret: a feed's API key is called `key`,
`token`, `apikey`, `auth`, `sig` or anything else its vendor chose, and a name cannot tell. The names stay, so
a reader can still tell which parameters were given.

`redact_urls(text)` does the same to every URL inside a text, for messages a library wrote (an httpx error
naming the URL it failed on, a redirect's Location). `url_secrets(url)` lists the secret parts themselves,
so a caller can also scrub a text that quotes one of them out of its URL.

Pure: strings in, strings out; no parsing failure escapes (a URL too broken to parse is hidden past its
scheme rather than shown).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["MASK", "redact_urls", "redacted_url", "url_secrets"]

MASK = "***"
"""What stands in for a hidden part."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
# A URL inside free text: a scheme and `//`, up to white space, a double quote or an angle bracket; a final
# quote or punctuation (`for url 'URL'`, `GET URL: HTTP 404`, `... at URL.`) is the sentence's. A single
# quote inside stays part of it: RFC 3986 allows one in a password, and it must not cut the password short.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"<>`]*[^\s\"<>`'.,:;!?)]")
_SHORTEST_SECRET = 4
"""Secret parts shorter than this are not scrubbed from free text: `?page=1` must not turn every `1` of a
message into `***`. In URLs they are always hidden."""


def redacted_url(url: str) -> str:
    """`url` with the password of its userinfo and the value of each query parameter replaced by `***`.

    A userinfo with no password (`https://TOKEN@host/`, the form of several Git and feed hosts) is hidden
    whole; so is a query part with no `=` and the fragment. Already redacted URLs come back unchanged.
    """
    scheme, authority, rest = _split(url)
    if authority is not None:
        userinfo, at, host = authority.rpartition("@")
        if at:
            user, colon, _password = userinfo.partition(":")
            authority = f"{user}:{MASK}@{host}" if colon and user else f"{MASK}@{host}"
    path, hash_mark, fragment = rest.partition("#")
    path, question, query = path.partition("?")
    shown = scheme + ("//" + authority if authority is not None else "") + path
    if question:
        shown += "?" + "&".join(_redacted_parameter(part) for part in query.split("&"))
    if hash_mark:
        shown += "#" + (MASK if fragment else "")
    return shown


def redact_urls(text: str) -> str:
    """`text` with every `scheme://...` URL in it redacted (see `redacted_url`)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda match: redacted_url(match.group(0)), text)


def url_secrets(url: str) -> tuple[str, ...]:
    """The parts of `url` that `redacted_url` hides (userinfo, query values, fragment), as written and
    percent-decoded, longest first; those shorter than 4 characters are left out (see `_SHORTEST_SECRET`)."""
    _, authority, rest = _split(url)
    found: set[str] = set()
    if authority is not None and "@" in authority:
        userinfo = authority.rpartition("@")[0]
        user, colon, password = userinfo.partition(":")
        found.update((password,) if colon and user else (userinfo, user, password))
    path, _, fragment = rest.partition("#")
    query = path.partition("?")[2]
    for part in query.split("&") if query else ():
        name, equals, value = part.partition("=")
        found.add(value if equals else name)
    found.add(fragment)
    found |= {unquote(value) for value in found} | {unquote(value.replace("+", " ")) for value in found}
    return tuple(sorted((s for s in found if len(s) >= _SHORTEST_SECRET), key=lambda s: (-len(s), s)))


def _split(url: str) -> tuple[str, str | None, str]:
    """(scheme with its colon, authority or None when there is no `//`, the rest); never raises."""
    match = _SCHEME.match(url)
    scheme = match.group(0) if match else ""
    rest = url[len(scheme):]
    if not rest.startswith("//"):
        return scheme, None, rest
    rest = rest[2:]
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    authority, rest = rest[:end], rest[end:]
    # A password with an unencoded `/` (`user:pa/ss@host`) ends the authority early, leaving `user:pa` (a
    # "port" that is no number): the userinfo then runs to the `@`, so the password's first part is hidden too.
    port = authority.rpartition(":")[2] if ":" in authority else ""
    broken = ":" in authority and not port.isdigit() and not authority.endswith("]")
    if broken and "@" not in authority and "@" in rest.partition("?")[0].partition("#")[0]:
        head, _, tail = rest.partition("@")
        if not any(char in head for char in "?#"):
            authority, rest = authority + head + "@" + tail.split("/", 1)[0], _after_host(tail)
    return scheme, authority, rest


def _after_host(tail: str) -> str:
    for index, char in enumerate(tail):
        if char in "/?#":
            return tail[index:]
    return ""


def _redacted_parameter(part: str) -> str:
    name, equals, value = part.partition("=")
    if not equals:
        return MASK if name else ""
    return f"{name}={MASK}" if value else f"{name}="
