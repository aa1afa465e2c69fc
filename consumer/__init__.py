"""The consumer's command, `dnswatch`: a client of the collector's Feeds and Events services."""
