"""Pipeline: fitted components, candidate sources, the ranker and the strategies."""
