"""An install on a machine without a C compiler still works, with the pure-Python core.

A copy of the checkout is installed into a fresh virtual environment with ``CC=false`` (every
compile fails, as with no compiler), once as a wheel (``pip install .``) and once editable
(``pip install -e .``, the README's way). The build requirements (setuptools, wheel, Cython) come
from the package index in pip's isolated build environment, as on a fresh machine; the runtime
dependencies come from this environment (``--system-site-packages``, ``--no-deps``), so the test
exercises the build, not the download of every dependency. The install must succeed and say why
there is no compiled core; mlthon must then log the fallback once, run the pure book, and run a
backtest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]


def _copy_checkout(dest: Path) -> None:
    """The checkout's files as a fresh clone would have them (no build products)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in files:
        rel = raw.decode()
        if not rel or rel.endswith((".so", ".pyd", ".c")) or rel.startswith("results/"):
            continue
        src = REPO / rel
        if not src.is_file():
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(src.read_bytes())


@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_core_install_without_compiler_uses_the_pure_core(tmp_path, editable):
    src = tmp_path / "src"
    _copy_checkout(src)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("MLTHON_PURE", "PYTHONPATH")}
    env["CC"] = "false"
    target = ["-e", str(src)] if editable else [str(src)]
    inst = subprocess.run(
        [str(py), "-m", "pip", "install", "-v", "--no-deps", *target],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert inst.returncode == 0, inst.stdout[-3000:] + inst.stderr[-3000:]
    said = inst.stdout + inst.stderr
    assert "mlthon build: compiling mlthon._core.tickbook failed" in said
    assert "mlthon will use its pure-Python core" in said

    del env["CC"]
    check = subprocess.run(
        [
            str(py),
            "-c",
            "import logging, mlthon\n"
            "from mlthon.basics.tickbook import PyTickBook, TickBook\n"
            "print(mlthon.__file__)\n"
            "print(TickBook is PyTickBook)\n",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    where, pure = check.stdout.split()
    assert Path(where).is_relative_to(src if editable else venv)
    assert pure == "True"
    assert check.stderr.count("mlthon core:") == 1
    assert "mlthon core: pure Python (no compiled extension: " in check.stderr

    run = subprocess.run(
        [
            str(venv / "bin" / "mlthon"),
            "backtest",
            str(src / "demo_strat" / "market_maker.toml"),
            "--synthetic-seconds",
            "30",
            "--no-report",
            "--out",
            str(tmp_path / "results"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / "results" / "summary.json").is_file()
