"""The collector's pure core: pull policy, feed status, versions and deltas. No I/O (import-linter checks)."""
