"""What the agent, the collector and the `dnswatch` command share: the errors, canonical names, the feed model
(dnswatch/feeds/), the event filter, the protobuf conversions of feeds and events (dnswatch/pbconvert/), the
Kubernetes list-and-watch loop, the gRPC channel, logging and the metrics/health server.

docs/architecture.md shows where it sits: the processes are built on it, and it imports none of them."""
