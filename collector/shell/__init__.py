"""The collector's shell: HTTP pulling, Kubernetes and folder feed sources, storage, gRPC, the command."""
