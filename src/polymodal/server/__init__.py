"""HTTP API and the single-page web UI over a search index."""
