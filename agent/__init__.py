"""dnswatch node agent: capture or replay DNS, attribute to pods, match feeds, emit events."""
