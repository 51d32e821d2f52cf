"""Speed and many users: the same arithmetic, faster (fastpath) and batched across clients (batching)."""
