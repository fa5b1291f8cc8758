"""My Otaku Friend: a hybrid anime recommender."""

__version__ = "0.1.0"
