"""Shared bits of the ops integration tests: feed configs, mlthon subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from mlthon import cli


def feed_config(tmp_path: Path, port: int, root: str) -> Path:
    """A synthetic Sim feed (instrument 9001) at recorded speed, for an hour."""
    p = tmp_path / "feed.toml"
    p.write_text(
        'exchange = "Sim"\n'
        "instrument_ids = [9001]\n"
        "speed = 1.0\n"
        "[source]\n"
        'kind = "synthetic"\n'
        "duration_s = 3600\n"
        "[bus]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f'topic_root = "{root}"\n',
        encoding="utf-8",
    )
    return p


def mlthon_argv(command: str, *args: str) -> list[str]:
    """``python -m mlthon <command> ...`` (ops commands through their module until the CLI
    lists them)."""
    if command in cli._DELEGATED or command in ("control", "strategy"):
        return [sys.executable, "-m", "mlthon", command, *args]
    code = (
        f"import sys; from mlthon.infra.ops import cli; sys.exit(cli.{command}_main(sys.argv[1:]))"
    )
    return [sys.executable, "-c", code, *args]


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


async def spawn(argv: list[str], **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=env_with(**env),
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def run_json(argv: list[str]) -> Any:
    """Run a command to completion and parse its stdout as JSON."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env_with()
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)
