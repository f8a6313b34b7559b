"""Identity resolution: explaining merges, probabilistic matching and its review queue."""
