"""Binance USD-M futures order entry: signed REST (``/fapi``) and the user-data stream."""
