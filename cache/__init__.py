"""Segment cache: one small interface, several backends (embedded LRU, Redis)."""
