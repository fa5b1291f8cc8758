"""Online experiments: arms assigned by a stable hash, impressions and feedback stored off the
request path, and online metrics per arm measured in a closed loop."""
