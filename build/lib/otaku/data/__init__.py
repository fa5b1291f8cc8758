"""Data: source files, validation, the immutable Dataset and its id maps."""
