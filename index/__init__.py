"""Indexing: loaders -> chunker -> embedder -> store, kept in sync with the article sources."""
