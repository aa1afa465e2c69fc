"""The part of a response an event shows, rewritten so that decoding it in full costs a bounded time.

The event's `answers` come from dnslib, which decodes every record of a message and follows compression
pointers with a weaker rule than the scanner's (a pointer must only point before itself), and without
remembering any: a long chain of pointers, named by thousands of records (or questions), costs it seconds.
An event shows at most its first answers, so dnslib is handed a message of its own: the header with only
the first question and those answers counted, the question, and the answers, every name dnslib will decode
in them written out whole, without a pointer. Each name is read by the scanner's strict walk first
(`read_names_once`: pointers before every position visited, at most 255 octets, a bound on jumps, each
position of the message walked once), so a message costs time in proportion to its length, and dnslib
follows no pointer at all; its records read exactly as the same records of the whole message.
"""

from __future__ import annotations

from agent.core.scanner import Damaged, read_names_once

TYPE_SOA, TYPE_MX, TYPE_RP, TYPE_NAPTR, TYPE_RRSIG, TYPE_NSEC = 6, 15, 17, 35, 46, 47

# Where dnslib finds names in the rdata of the types whose rdata it decodes into names (CNAME, NS, PTR and
# DNAME at 0; MX and SRV after their numbers; the signer of an RRSIG after its 18 fixed octets), beside the
# types walked specially below: SOA and RP hold two names, NAPTR's follows three character-strings.
_RDATA_NAME_AT = {2: 0, 5: 0, 12: 0, 39: 0, TYPE_NSEC: 0, TYPE_MX: 2, 33: 6, TYPE_RRSIG: 18}


def displayable_prefix(message: bytes, max_answers: int) -> bytes | None:
    """The first question and first `max_answers` answers of `message`, uncompressed (see above), as a
    message; None when the question or one of those answers is damaged."""
    try:
        qdcount = message[4] << 8 | message[5]
        ancount = min(message[6] << 8 | message[7], max_answers)
        offset = 12
        walked: dict = {}
        out = []
        for index in range(qdcount):
            wire, offset = read_names_once(message, offset, walked)
            if index == 0:
                out.append(wire + message[offset : offset + 4])
            offset += 4
        for _ in range(ancount):
            owner, offset = read_names_once(message, offset, walked)
            rtype = message[offset] << 8 | message[offset + 1]
            fixed = message[offset : offset + 8]  # type, class, TTL
            rdata = offset + 10
            offset = rdata + (message[offset + 8] << 8 | message[offset + 9])
            if offset > len(message) or len(fixed) < 8:
                return None
            written = _rdata_written_out(message, rtype, rdata, offset, walked)
            out.append(owner + fixed + len(written).to_bytes(2, "big") + written)
        if offset > len(message):
            return None
    except (IndexError, Damaged, OverflowError):  # OverflowError: rdata longer than 65535 octets once written out
        return None
    header = message[:4] + bytes((0, min(qdcount, 1), ancount >> 8, ancount & 0xFF, 0, 0, 0, 0))
    return header + b"".join(out)


def _rdata_written_out(message: bytes, rtype: int, rdata: int, end: int, walked: dict) -> bytes:
    """A record's rdata with every name dnslib will decode in it written out whole; `Damaged` when one is
    bad or overruns the record."""
    at = _RDATA_NAME_AT.get(rtype)
    if at is not None:
        names, position = 1, rdata + at
    elif rtype == TYPE_SOA or rtype == TYPE_RP:
        names, position = 2, rdata
    elif rtype == TYPE_NAPTR:
        names, position = 1, rdata + 4
        for _ in range(3):  # flags, services, regexp
            position += message[position] + 1
    else:
        return message[rdata:end]
    parts = [message[rdata:position]]
    for _ in range(names):
        wire, position = read_names_once(message, position, walked)
        parts.append(wire)
    if position > end:
        raise Damaged("name overruns its record")
    parts.append(message[position:end])
    return b"".join(parts)
