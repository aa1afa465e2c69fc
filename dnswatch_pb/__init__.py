"""Generated protobuf and gRPC code for proto/dnswatch/ (proto package dnswatch). DO NOT EDIT.

Regenerate with `python scripts/gen_protos.py` (grpcio-tools 1.85.1).
"""
