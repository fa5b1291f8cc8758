"""Storage: the artifact registry (MLflow); the database comes with the storage issue."""
