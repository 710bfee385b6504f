"""Imports point one way: basics <- api <- infra; feeds and gateways never use the strategy API;
strategies use only the API and the basics."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# package -> prefixes it must not import
RULES = {
    "mlthon/basics": (
        "mlthon.api",
        "mlthon.infra",
        "mlthon.feeds",
        "mlthon.gateways",
        "mlthon.app",
        "aiomqtt",
        "paho",
        "telegram",
        "asyncio",
    ),
    # the compiled core holds pure values like basics (and imports nothing above them)
    "mlthon/_core": (
        "mlthon.api",
        "mlthon.infra",
        "mlthon.feeds",
        "mlthon.gateways",
        "mlthon.app",
        "aiomqtt",
        "paho",
        "telegram",
        "asyncio",
    ),
    "mlthon/api": (
        "mlthon.infra",
        "mlthon.feeds",
        "mlthon.gateways",
        "mlthon.app",
        "aiomqtt",
        "paho",
        "telegram",
    ),
    "mlthon/infra": ("mlthon.feeds", "mlthon.gateways", "mlthon.app"),
    "mlthon/feeds": ("mlthon.api", "mlthon.gateways", "mlthon.app"),
    "mlthon/gateways": ("mlthon.api", "mlthon.feeds", "mlthon.app"),
    "mlthon/venues": (
        "mlthon.api",
        "mlthon.feeds",
        "mlthon.gateways",
        "mlthon.app",
        "mlthon.infra",
    ),
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_does_not_import_upwards(package):
    bad = []
    for f in sorted((REPO / package).rglob("*.py")):
        for mod in imports(f):
            if any(mod == p or mod.startswith(p + ".") for p in RULES[package]):
                bad.append(f"{f.relative_to(REPO)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_strategies_use_only_the_api_and_basics():
    bad = []
    for f in sorted((REPO / "demo_strat").rglob("*.py")):
        for mod in imports(f):
            if mod.startswith("mlthon") and not mod.startswith(("mlthon.api", "mlthon.basics")):
                bad.append(f"{f.relative_to(REPO)} imports {mod}")
    assert not bad, "\n".join(bad)
