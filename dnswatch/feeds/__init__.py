"""The feed model: domain and IP sets, the line formats and structured formats, the GlobalThreatFeed spec, the
wire encoding of a set, a feed's status, pull outcomes and the feed as consumers see it. Pure: no I/O, no
logging (docs/feeds.md describes the formats)."""
