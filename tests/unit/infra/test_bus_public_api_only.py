"""The bus uses only the public API of paho / aiomqtt: no ``client._client``, ``client._sock``...

(It once reached into aiomqtt's private paho client for manual acks and a fast publish path.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import mlthon.infra.bus

BUS = Path(mlthon.infra.bus.__file__).parent


def _private_uses(path: Path) -> list[str]:
    """``x._name`` where ``x`` is not ``self`` / ``cls`` (someone else's private attribute)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_bus_modules_touch_no_private_attribute_of_other_objects():
    files = sorted(BUS.glob("*.py"))
    assert any(f.name == "mqtt.py" for f in files)
    assert [use for f in files for use in _private_uses(f)] == []
