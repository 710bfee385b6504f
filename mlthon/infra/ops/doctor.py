"""``mlthon doctor``: pre-flight checks, each with a verdict, the reason and how to fix it.

=============  ===========================================================================
broker         the MQTT broker accepts a connection and the login (``not authorized`` when it
               refuses the credentials: a secured broker)
clock          local clock vs. the timestamps of fresh heartbeats (no NTP needed)
config         each strategy config loads (``load_strategy_config``) with its instruments, its
               class imports and its ``[params]`` fit the class's parameter schema
instruments    the instruments file loads (``load_instruments``)
secrets        secret files (Telegram token file, ``--secret``) are not group/world readable
versions       the running components report one mlthon version, the local one
disk           free space for logs and journals
stale          no running component has gone silent
=============  ===========================================================================

A FAIL makes the exit code 1; WARNs do not. A check with nothing to check (no strategy config, no
secret file given) is reported as SKIP, with what to give to have it done.
"""

from __future__ import annotations

import os
import shutil
import stat
import tomllib
from collections.abc import Sequence
from pathlib import Path

import attrs

from mlthon.basics.errors import ConfigError
from mlthon.infra.clock import NS_PER_S
from mlthon.infra.config import load_strategy_class, load_strategy_config
from mlthon.infra.instruments import load_instruments
from mlthon.infra.ops.board import ComponentView, StatusBoard
from mlthon.infra.ops.heartbeat import DEGRADED, STALE, UP, mlthon_version
from mlthon.infra.strategy_params import ParamSchema, param_rules

OK = "OK"
WARN = "WARN"
FAIL = "FAIL"
SKIP = "SKIP"  # nothing to check: not a pass


@attrs.frozen
class Check:
    """One line of the doctor's report."""

    name: str
    verdict: str
    why: str
    fix: str = ""

    def line(self) -> str:
        """``[FAIL] name: why -> fix: ...`` (``[SKIP] name: why (how to have it checked)``)."""
        if self.verdict == SKIP:
            return f"[{SKIP}] {self.name}: {self.why}" + (f" ({self.fix})" if self.fix else "")
        fix = f" -> fix: {self.fix}" if self.fix and self.verdict != OK else ""
        return f"[{self.verdict:<4}] {self.name}: {self.why}{fix}"


@attrs.frozen
class DoctorOptions:
    """What to check.

    Attributes:
        host / port / root: the broker and topic root.
        strategies: strategy configs to validate.
        instruments: an instruments file to validate (None: the packaged one).
        telegram: a telegram.toml whose ``token_file`` is checked.
        secrets: other secret files to check.
        dirs: directories that must have free space (logs, journals).
        min_free_mb: below this free space, FAIL (WARN below twice as much).
        max_skew_s: clock skew tolerated.
        connect_timeout_s: how long to wait for the broker.
        user / password_file / tls_ca: the broker login (None: ``$MLTHON_BUS_USERNAME``,
            ``$MLTHON_BUS_PASSWORD`` or ``$MLTHON_BUS_PASSWORD_FILE``, ``$MLTHON_BUS_TLS_CA``;
            :func:`~mlthon.infra.security.bus_client_options`).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    root: str = "mlt"
    strategies: Sequence[Path] = ()
    instruments: Path | None = None
    telegram: Path | None = None
    secrets: Sequence[Path] = ()
    dirs: Sequence[Path] = (Path("."),)
    min_free_mb: float = 500.0
    max_skew_s: float = 2.0
    connect_timeout_s: float = 3.0
    user: str | None = None
    password_file: Path | None = None
    tls_ca: Path | None = None


def check_config(paths: Sequence[Path]) -> list[Check]:
    """Each strategy config loads, its instruments resolve, its class imports and its
    ``[params]`` fit the class's parameter schema (:mod:`mlthon.infra.strategy_params`)."""
    if not paths:
        return [Check("config", SKIP, "no strategy config given", "check one with --strategy FILE")]
    out = []
    for p in paths:
        try:
            cfg = load_strategy_config(p)
            n = len(cfg.instruments())
            rules = param_rules(load_strategy_class(cfg.class_path, cfg.source))
            rules.check(cfg.params, cfg.source)
        except ConfigError as exc:
            out.append(Check("config", FAIL, f"{p}: {exc}", "correct the file and key named"))
            continue
        schema = "parameter schema" if isinstance(rules, ParamSchema) else "free-form params"
        out.append(Check("config", OK, f"{p}: strategy {cfg.name}, {n} instruments, {schema}"))
    return out


def check_instruments(path: Path | None) -> Check:
    """The instruments file loads."""
    try:
        insts = load_instruments(path)
    except ConfigError as exc:
        return Check("instruments", FAIL, str(exc), "correct the instrument named")
    return Check("instruments", OK, f"{path or 'packaged file'}: {len(insts)} instruments")


def telegram_token_file(path: Path) -> Path | None:
    """The ``token_file`` named by a telegram.toml (relative to it), if any.

    Raises:
        ConfigError: the file cannot be read or is not TOML.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(path)) from exc
    tg = data.get("telegram", {})
    name = tg.get("token_file") if isinstance(tg, dict) else None
    return path.parent / str(name) if name else None


def check_secret(path: Path) -> Check:
    """A secret file exists and only its owner can read it."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return Check("secrets", FAIL, f"{path}: {exc.strerror}", "create it, or fix the path")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check(
            "secrets",
            FAIL,
            f"{path} is accessible to group/others (mode {stat.filemode(mode)})",
            f"chmod 600 {path}",
        )
    return Check("secrets", OK, f"{path}: owner only ({stat.filemode(mode)})")


def check_secrets(telegram: Path | None, secrets: Sequence[Path]) -> list[Check]:
    """Every secret file: the Telegram token file and those given."""
    files = list(secrets)
    out = []
    if telegram is not None:
        try:
            tf = telegram_token_file(telegram)
        except ConfigError as exc:
            out.append(Check("secrets", FAIL, str(exc), "fix the Telegram config"))
            tf = None
        if tf is not None:
            files.append(tf)
    if not files and not out:
        return [
            Check("secrets", SKIP, "no secret file given", "check one with --secret or --telegram")
        ]
    return out + [check_secret(f) for f in files]


def check_disk(dirs: Sequence[Path], min_free_mb: float) -> list[Check]:
    """Free space in each directory (the nearest existing parent is measured)."""
    out = []
    for d in dirs:
        probe = d
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free_mb = shutil.disk_usage(probe).free / 1_000_000
        why = f"{d}: {free_mb:,.0f} MB free"
        if free_mb < min_free_mb:
            out.append(Check("disk", FAIL, f"{why} (< {min_free_mb:,.0f} MB)", "free some space"))
        elif free_mb < 2 * min_free_mb:
            out.append(Check("disk", WARN, f"{why} (low)", "free some space soon"))
        else:
            out.append(Check("disk", OK, why))
    return out


def _alive(board: StatusBoard) -> list[ComponentView]:
    return [
        v
        for v in board.sorted_views()
        if v.status is not None and v.state in (UP, DEGRADED) and v.status.ts
    ]


def check_clock(board: StatusBoard, max_skew_s: float) -> Check:
    """Compare the local clock with the timestamps of live heartbeats.

    A heartbeat received at local time ``now`` was stamped at most one period earlier, so a
    stamp later than ``now + max_skew_s`` means the sender's clock is ahead, and a live
    component whose newest stamp is older than a period plus ``max_skew_s`` is behind.
    """
    views = _alive(board)
    if not views:
        return Check(
            "clock", WARN, "no live component to compare with", "start the components first"
        )
    now = board.scheduler.now_ns()
    bad = []
    for v in views:
        assert v.status is not None
        age_s = (now - v.status.ts) / NS_PER_S
        if age_s < -max_skew_s:
            bad.append(f"{v.kind}/{v.name} is {-age_s:.1f}s ahead")
        elif age_s > v.status.heartbeat_s + max_skew_s and v.state != STALE:
            bad.append(f"{v.kind}/{v.name} is {age_s - v.status.heartbeat_s:.1f}s behind")
    if bad:
        return Check(
            "clock",
            FAIL,
            f"clock skew over {max_skew_s:.1f}s: " + "; ".join(bad),
            "synchronise the hosts' clocks (chrony/systemd-timesyncd)",
        )
    return Check("clock", OK, f"{len(views)} components within {max_skew_s:.1f}s")


def check_versions(board: StatusBoard, local: str | None = None) -> Check:
    """The running components report one version, the local one."""
    local = local or mlthon_version()
    versions: dict[str, list[str]] = {}
    for v in _alive(board):
        assert v.status is not None
        versions.setdefault(v.status.version or "?", []).append(f"{v.kind}/{v.name}")
    if not versions:
        return Check("versions", WARN, "no running component reports a version")
    if len(versions) > 1:
        detail = "; ".join(f"{ver}: {', '.join(names)}" for ver, names in sorted(versions.items()))
        return Check(
            "versions", FAIL, f"components disagree: {detail}", "restart them on one release"
        )
    (only,) = versions
    if only != local:
        return Check(
            "versions", WARN, f"components run {only}, this host has {local}", "upgrade one side"
        )
    return Check("versions", OK, f"all {sum(map(len, versions.values()))} components run {only}")


def check_stale(board: StatusBoard) -> Check:
    """No component is stale."""
    stale = [f"{v.kind}/{v.name}" for v in board.sorted_views() if v.state == STALE]
    if stale:
        return Check(
            "stale",
            WARN,
            f"silent components: {', '.join(stale)}",
            "restart them, or clear their retained status",
        )
    return Check("stale", OK, f"{len(board.components)} components heard, none stale")


def local_checks(opts: DoctorOptions) -> list[Check]:
    """The checks that need no broker."""
    out = check_config(opts.strategies)
    out.append(check_instruments(opts.instruments))
    out += check_secrets(opts.telegram, opts.secrets)
    out += check_disk(opts.dirs, opts.min_free_mb)
    return out


def board_checks(board: StatusBoard, opts: DoctorOptions) -> list[Check]:
    """The checks read from the running components' statuses."""
    return [check_clock(board, opts.max_skew_s), check_versions(board), check_stale(board)]


def verdict(checks: Sequence[Check]) -> int:
    """The exit code: 1 if any check failed, else 0."""
    return 1 if any(c.verdict == FAIL for c in checks) else 0


def default_dirs() -> list[Path]:
    """Where logs and journals go by default: ``$MLTHON_LOG_DIR`` (if set) and the current
    directory."""
    dirs = [Path(".")]
    env = os.environ.get("MLTHON_LOG_DIR")
    if env:
        dirs.append(Path(env))
    return dirs
