"""The feed model: domain and IP sets, the line formats and structured formats, the GlobalThreatFeed spec and
the wire encoding of a set. Pure: no I/O, no logging (docs/feeds.md describes the formats)."""
