"""``mlthon run --secure`` hands each child its broker password in a file only the user can read
(mode 600, in the run's private folder, removed when the run ends), never in its environment
(``/proc/<pid>/environ``) nor on its command line; the operator reaches the run with the admin's
password file it prints: ``mlthon status``, a command hook answered through the control service,
and ``mlthon params`` checked against the market maker's parameter schema."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest

from mlthon.infra.broker import free_port
from tests.conftest import REPO, wait_until
from tests.integration.app.test_run import children_of, fast_mm_config
from tests.running import mlthon

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SECURED = re.compile(r"secured broker on 127\.0\.0\.1:(\d+); .* password is in (\S+) ")


async def _mlthon(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLTHON_BUS_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mlthon", "--log-level", "WARNING", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _proc_text(pid: int, name: str) -> str:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes().replace(b"\0", b"\n").decode()
    except OSError:
        return ""


async def test_run_secure_passwords_reach_children_in_files_never_their_environment(tmp_path):
    cfg = fast_mm_config(tmp_path, free_port())
    async with mlthon(
        "--log-level", "INFO", "run", str(cfg), "--secure", "--speed", "20"
    ) as run:  # fmt: skip
        lines, proc = run.lines, run.proc
        await wait_until(lambda: any(SECURED.search(x) for x in lines), 60, "the admin's file")
        match = next(m for x in lines if (m := SECURED.search(x)))
        port, admin_file = match.group(1), Path(match.group(2))
        await wait_until(lambda: any("paper trading" in x for x in lines), 90, "the strategy")
        folder = admin_file.parent
        files = sorted(folder.iterdir())
        assert {f.name for f in files} == {
            "mlthon-admin", "strat-demo_mm", "gtw-Sim", "feed-Sim",
        }  # fmt: skip
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
        passwords = [f.read_text().strip() for f in files]
        assert all(len(p) >= 24 for p in passwords)
        children = children_of(proc.pid)
        assert len(children) >= 5  # broker, control, gateway, feed, strategy
        with_file = 0
        for pid in children:
            environ, cmdline = _proc_text(pid, "environ"), _proc_text(pid, "cmdline")
            for pw in passwords:
                assert pw not in environ and pw not in cmdline, (pid, cmdline)
            assert "MLTHON_BUS_PASSWORD=" not in environ
            with_file += f"MLTHON_BUS_PASSWORD_FILE={folder}/" in environ
        assert with_file >= 4, "control, gateway, feed and strategy get a password file"

        bus = ["--port", port, "--root", "runtest"]
        login = ["--password-file", str(admin_file)]
        wanted = {("strategy", "demo_mm"), ("control", "control")}
        for _ in range(20):  # (each part says it is up on its own time)
            rc, out, err = await _mlthon("status", "--json", *bus, *login)
            assert rc == 0, err
            kinds = {(c["kind"], c["name"]) for c in json.loads(out)["components"]}
            if wanted <= kinds:
                break
        assert wanted <= kinds, "\n".join(lines)
        rc, out, err = await _mlthon("status", "--json", *bus)
        assert rc == 3 and "Not authorized" in err
        # a hook of the strategy, answered through the control service
        rc, out, err = await _mlthon("cmd", "demo_mm", "resume", *bus, *login, "--timeout", "30")
        assert (rc, out.strip()) == (0, "ok: resumed"), err
        rc, out, err = await _mlthon("params", "demo_mm", "treshold=3", *bus, *login)
        assert rc == 1 and "unknown parameter 'treshold'" in out and "spread_ticks" in out
        rc, out, err = await _mlthon("params", "demo_mm", "spread_ticks=2", *bus, *login)
        assert rc == 0 and "spread_ticks=2" in out, out + err

        rc = await run.interrupt(90)
    text = run.text
    assert rc == 0, text[-4000:]
    assert not folder.exists(), "the password files are removed with the run"
    for pw in passwords:
        assert pw not in text
