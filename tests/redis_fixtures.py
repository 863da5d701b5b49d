"""Redis fixtures (owned by the cache lane): tests start their own redis-server on a free port."""
