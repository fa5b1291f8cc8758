"""Recommenders behind one interface, and the LightGBM rating model."""
