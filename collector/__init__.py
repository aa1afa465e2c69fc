"""The dnswatch collector: feeds pulled and distributed to agents, events stored and served to consumers."""
