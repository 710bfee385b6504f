"""The fingerprint of a compiled module's sources, built into the module and checked at import.

``setup.py`` compiles ``source_hash(<its .pyx>)`` into each compiled module (``SOURCE_HASH``);
``mlthon._core`` compares it with the sources beside the module, so an editable checkout whose
``.pyx`` / ``.pxd`` changed since its last build says so (``make core`` rebuilds). It has no
imports from mlthon: ``setup.py`` loads this file by path, before mlthon is installed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def source_hash(pyx: Path) -> str:
    """A short hash of ``pyx`` and of its ``.pxd`` beside it (when there is one)."""
    digest = hashlib.sha256(pyx.read_bytes())
    pxd = pyx.with_suffix(".pxd")
    if pxd.exists():
        digest.update(pxd.read_bytes())
    return digest.hexdigest()[:16]
