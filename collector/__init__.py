"""dnswatch collector (issues 3 and 4)."""
