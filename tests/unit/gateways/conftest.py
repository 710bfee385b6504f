"""Fixtures of the simulated-exchange tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.gateways import helpers


@pytest.fixture(params=[False, True], ids=["own-book", "shared-book"])
def shared_books(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Run a test with engines that keep their own books, then with engines reading books a
    backtest keeps (``helpers.SharedBookEngine``): the sim must behave the same. Use it as
    ``pytestmark = pytest.mark.usefixtures("shared_books")``."""
    helpers.SHARED[0] = request.param
    yield request.param
    helpers.SHARED[0] = False
