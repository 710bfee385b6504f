"""Shared fixtures: a real mosquitto on loopback, per-test topic roots, data paths."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlthon.infra.broker import INSTALL_HINT, MosquittoBroker, find_mosquitto

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m mlthon --log-level WARNING <args>`` as a user would run it; output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mlthon", "--log-level", "WARNING", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(autouse=True, scope="session")
def _replay_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Replays cache what they decode (feeds/replay_cache.py): never into the user's home from
    the tests, nor from the CLI processes they start (which inherit the environment)."""
    os.environ["MLTHON_CACHE_DIR"] = str(tmp_path_factory.mktemp("replay-cache"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared recordings folder (beside the clone)."""
    assert SHARED_DATA.is_dir(), f"{SHARED_DATA} is missing: clone next to shared/"
    return SHARED_DATA


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MosquittoBroker]:
    """One mosquitto for the session, on a free 127.0.0.1 port."""
    if find_mosquitto() is None:
        pytest.fail(f"mosquitto is not installed; {INSTALL_HINT}")
    with MosquittoBroker() as broker:
        yield broker


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    """A private mosquitto for tests that stop or restart it."""
    if find_mosquitto() is None:
        pytest.fail(f"mosquitto is not installed; {INSTALL_HINT}")
    with MosquittoBroker() as b:
        yield b


@pytest.fixture
def topic_root(request: pytest.FixtureRequest) -> str:
    """A topic root unique to the test."""
    return "t/" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]


async def wait_until(pred: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``pred`` on the event loop until it is truthy; fail after ``timeout`` seconds.

    The deadline is generous on purpose: the call returns as soon as ``pred`` holds, and a loaded
    machine (CI, busy neighbours) can take seconds to schedule a process or a broker round trip.
    """
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}")
        await asyncio.sleep(0.005)
