"""Features: item features, user features and synopsis embeddings."""
