"""The pure detection core: bytes and values in, values out. No I/O, no logging, no scapy/grpc/kubernetes."""
