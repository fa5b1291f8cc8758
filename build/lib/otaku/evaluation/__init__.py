"""Evaluation: the user split, metrics (pure functions) and report tables."""
