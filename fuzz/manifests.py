"""GlobalThreatFeed manifests: YAML text as `--feed-manifest` and the collector's `--feeds-dir` read it, then
`feed_specs_from_yaml_documents` (dnswatch/feeds/spec.py), the pure part both share.

Inputs are YAML streams, seeded with the demo's manifests and variants using every spec field (headers from
Secrets and ConfigMaps, JSON and CSV formats, a List). PyYAML's documented rejection is `yaml.YAMLError`;
the spec's is `FeedSpecError`, whose message must name a field. Cross-check: a valid spec's values are those
the validator promises (a period of at least 5 minutes, an http(s) or file URL, a known content and mode).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml

from dnswatch.feeds.lines import CONTENTS
from dnswatch.feeds.spec import MIN_PERIOD_SECONDS, MODES, FeedSpecError, feed_specs_from_yaml_documents
from fuzz import seeds
from fuzz.oracle import Target, bounded, check


def manifest_one(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError:
        return
    for allow_file_urls in (False, True):
        try:
            specs = feed_specs_from_yaml_documents(documents, allow_file_urls=allow_file_urls)
        except FeedSpecError as error:
            check(bool(error.field) and str(error), "a rejection that names no field")
            continue
        for spec in specs:
            check(spec.content in CONTENTS and spec.mode in MODES, "a spec with an unknown content or mode")
            check(spec.period_seconds >= MIN_PERIOD_SECONDS, f"a period of {spec.period_seconds}s")
            schemes = ("http", "https", "file") if allow_file_urls else ("http", "https")
            check(urlsplit(spec.url).scheme in schemes, f"a URL of an unknown scheme: {spec.url!r}")


TARGETS = [
    Target("manifest", "dnswatch/feeds/spec.py: GlobalThreatFeed YAML streams through feed_specs_from_yaml_documents",
           bounded(manifest_one), seeds.manifest_seeds),
]
