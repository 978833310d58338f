"""The ledger: an append-only JSON-Lines file of run records (the one source of truth)."""
