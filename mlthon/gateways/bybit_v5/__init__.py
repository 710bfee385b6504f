"""Bybit v5 (linear perpetuals) order entry: signed REST (``/v5``) and the private stream."""
