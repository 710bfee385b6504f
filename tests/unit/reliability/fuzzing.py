"""Shared hypothesis strategies of the fuzz tests: arbitrary bytes and mutated valid payloads.

The number of examples is bounded for CI; ``MLTHON_FUZZ_EXAMPLES=20000 pytest
tests/unit/reliability -k fuzz`` runs a longer campaign (``docs/reliability.md``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=int(os.environ.get("MLTHON_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("MLTHON_FUZZ_RANDOM") is None,
)

_TOKENS = [b"", b"0", b"-1", b"1e400", b"null", b"true", b'"x"', b"[]", b"{}", b'"NaN"', b"\xff"]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid seed with a few byte flips, deletions, insertions and JSON-token splices."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(data)))
        if op == 0 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == 1 and pos < len(data):
            end = min(len(data), pos + draw(st.integers(1, 8)))
            del data[pos:end]
        elif op == 2:
            data[pos:pos] = draw(st.binary(max_size=8))
        else:
            data[pos:pos] = draw(st.sampled_from(_TOKENS))
    return bytes(data)


def inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, or a mutated seed."""
    return st.one_of(st.binary(max_size=300), mutated(seeds))
