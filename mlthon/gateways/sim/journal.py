"""The order journal, shared by every gateway: see :mod:`mlthon.gateways.journal`."""

from __future__ import annotations

from mlthon.gateways.journal import (
    SCHEMA_VERSION,
    JournaledReport,
    JournaledRequest,
    OrderJournal,
)

__all__ = ["SCHEMA_VERSION", "JournaledReport", "JournaledRequest", "OrderJournal"]
