# Types of the compiled level loop (mlthon/_core/levels.pyx); the same interface as
# mlthon.feeds.levels.py_apply_pairs, which documents it.
from typing import Any

from mlthon._core.tickbook import TickBook

SOURCE_HASH: str

def apply_pairs(
    book: TickBook,
    ticks: dict[str, int],
    lots: dict[str, int],
    side: int,
    pairs: list[Any],
    start: int,
    out: list[tuple[int, int, int, int]] | None,
) -> int: ...
def count_levels(raw: bytes) -> int: ...
def apply_raw(
    book: TickBook,
    raw: bytes,
    side: int,
    tick_places: int,
    tick_units: int,
    tick_limit: int,
    lot_places: int,
    lot_units: int,
    lot_limit: int,
    out: list[tuple[int, int, int, int]] | None,
) -> int: ...
def changes_in_ranges(
    ch: list[Any],
    bid_ticks: list[int],
    ask_ticks: list[int],
    resting_bids: dict[int, Any],
    resting_asks: dict[int, Any],
) -> tuple[bool, bool, list[Any]]: ...
