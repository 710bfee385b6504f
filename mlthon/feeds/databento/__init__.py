"""Databento market-by-order (MBO, L3) data: the CSV transcode of the ``mbo`` schema (CME)."""
