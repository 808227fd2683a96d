"""Adapters: thin shells that each own one library (SQLite, Prometheus, ...) behind our own API."""
