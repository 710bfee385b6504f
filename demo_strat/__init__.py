"""Example strategies: a real market maker and a minimal example of the API."""
