"""Peer set-ups for bin/bench; imported only by the peers' own virtual environment."""
