"""Who may call the collector (docs/grpc-api.md): TLS, client certificates for agents, bearer tokens, roles.

    dnswatch-collector ... --tls-cert tls.crt --tls-key tls.key \\
        [--client-ca agents-ca.crt --mtls-listen 0.0.0.0:7444] \\
        [--agent-token-file /var/run/secrets/dnswatch/agent-tokens] [--consumer-token-file FILE] \\
        [--viewer-token-file FILE] \\
        [--token-review --agent-service-account dnswatch/dnswatch-agent --consumer-service-account ops/*]

Three roles: an **agent** may subscribe to the feeds and send events; a **consumer** may read feeds and events
(and ask for a sync); a **viewer** (`--viewer-token-file`, `--viewer-service-account`) may only read, over the
HTTP API (docs/http-api.md): no gRPC service is for viewers. Health and reflection are open, so probes and `grpcurl list` need nothing. A caller
proves its role with

- a client certificate signed by `--client-ca` (agents only), on the `--mtls-listen` port;
- a bearer token (`authorization: Bearer …` metadata) found in `--agent-token-file` / `--consumer-token-file`
  (one token a line, re-read when the file changes, so a rotated Secret needs no restart); or
- a projected ServiceAccount token that the Kubernetes API vouches for (TokenReview), whose ServiceAccount is
  listed for the role (`NS/NAME`, or `NS/*` for every ServiceAccount of a namespace).

No credentials, or a token nobody knows: UNAUTHENTICATED. A valid credential of the other role: PERMISSION_DENIED.
A service nobody listed here is refused to everyone (new services must be given a role, not left open).
`--insecure` serves plaintext with no checks at all, as before TLS existed. Tokens are compared in constant
time and never logged; caches key them by their SHA-256.

Why a second port for client certificates: grpc-python can either require a client certificate or not ask for
one (`require_client_auth`), never ask and accept its absence. Agents with certificates therefore get a port
that requires them, and the main port takes tokens.

The settings the flags give are in settings.py, the TLS ports in ports.py, the token sources (token files,
TokenReview) in tokens.py, and the roles with the interceptor that checks them in interceptor.py.
"""
