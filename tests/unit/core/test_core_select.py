"""Which core runs: the compiled one when it is built, the pure-Python one when it is not or when
``MLTHON_PURE=1`` says so; chosen once per process and logged once."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from mlthon import _core
from mlthon._core.source_hash import source_hash
from mlthon.basics.errors import ConfigError
from tests.conftest import REPO

PROBE = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')\n"
    "{prelude}\n"
    "import mlthon._core\n"
    "from mlthon.basics.tickbook import PyTickBook, TickBook\n"
    "import mlthon.basics.tickbook, mlthon._core  # again: no second log line\n"
    "print(TickBook.__module__, TickBook is PyTickBook)\n"
)


def _probe(env_value: str | None, prelude: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != _core.PURE_ENV}
    if env_value is not None:
        env[_core.PURE_ENV] = env_value
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(prelude=prelude)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _compiled_built() -> bool:
    try:
        __import__("mlthon._core.tickbook")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_core_pure_forced_by_a_yes(value):
    assert _core.pure_forced({_core.PURE_ENV: value}) is True


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off"])
def test_core_pure_not_forced_by_a_no_or_nothing(value):
    assert _core.pure_forced({_core.PURE_ENV: value}) is False
    assert _core.pure_forced({}) is False


def test_core_pure_with_another_value_is_a_config_error():
    with pytest.raises(ConfigError, match="MLTHON_PURE='maybe': expected 1/true"):
        _core.pure_forced({_core.PURE_ENV: "maybe"})


def test_core_mlthon_pure_forces_the_pure_book_logged_once():
    res = _probe("1")
    assert res.stdout.split() == ["mlthon.basics.tickbook", "True"]
    assert res.stderr.count("mlthon core:") == 1
    assert "INFO mlthon core: pure Python (MLTHON_PURE=1)" in res.stderr


@pytest.mark.skipif(not _compiled_built(), reason="compiled core not built")
def test_core_compiled_book_runs_when_built_logged_once():
    res = _probe("0")
    assert res.stdout.split() == ["mlthon._core.tickbook", "False"]
    assert res.stderr.count("mlthon core:") == 1
    assert "INFO mlthon core: compiled (mlthon._core.tickbook, mlthon._core.levels)" in res.stderr


def test_core_missing_extension_falls_back_with_a_warning():
    # as on a machine whose install had no C compiler: the compiled module cannot be imported
    res = _probe(None, prelude="sys.modules['mlthon._core.tickbook'] = None")
    assert res.stdout.split() == ["mlthon.basics.tickbook", "True"]
    assert res.stderr.count("mlthon core:") == 1
    assert "WARNING mlthon core: pure Python (no compiled extension: " in res.stderr


def test_core_main_prints_the_choice_and_checks_expect():
    env = {**os.environ, _core.PURE_ENV: "1"}
    cmd = [sys.executable, "-m", "mlthon._core"]
    ok = subprocess.run([*cmd, "--expect", "pure"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout == "mlthon core: pure Python (MLTHON_PURE=1)\n"
    bad = subprocess.run([*cmd, "--expect", "compiled"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "expected the compiled core, found the pure one" in bad.stdout


def test_core_stale_sources_names_a_pyx_changed_since_its_build(tmp_path, monkeypatch):
    source = tmp_path / "tickbook.pyx"
    source.write_text("cdef class TickBook: pass\n")
    fake = types.ModuleType("mlthon._core.tickbook")
    fake.__file__ = str(tmp_path / "tickbook.cpython-311-x86_64-linux-gnu.so")
    fake.SOURCE_HASH = source_hash(source)  # type: ignore[attr-defined]
    monkeypatch.setattr(_core, "_modules", {"tickbook": fake})
    assert _core.stale_sources() == []
    (tmp_path / "tickbook.pxd").write_text("cdef class TickBook: pass\n")  # a .pxd counts too
    assert _core.stale_sources() == [str(source)]
    fake.SOURCE_HASH = source_hash(source)  # type: ignore[attr-defined]
    assert _core.stale_sources() == []
    source.unlink()  # an install without sources beside the module: nothing to compare
    assert _core.stale_sources() == []


def test_core_built_module_carries_its_sources_hash():
    try:
        mod = __import__("mlthon._core.tickbook", fromlist=["SOURCE_HASH"])
    except ImportError:
        pytest.skip("compiled core not built")
    built = mod.SOURCE_HASH
    assert built == source_hash(REPO / "mlthon" / "_core" / "tickbook.pyx")


def test_core_pick_returns_the_pure_twin_when_pure(monkeypatch):
    sentinel = object()
    monkeypatch.setattr(_core, "_modules", {})
    assert _core.pick("tickbook", "TickBook", sentinel) is sentinel
