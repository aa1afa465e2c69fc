"""Generated protobuf and gRPC code for proto/dnswatch/v1/ (proto package dnswatch.v1). DO NOT EDIT.

Regenerate with `python scripts/gen_protos.py` (grpcio-tools 1.85.1).
"""
