"""``python -m mlthon._core [--expect compiled|pure]``: print which core runs.

With ``--expect``, exit 1 when another one runs (CI checks that its install compiled the core).
"""

from __future__ import annotations

import argparse
import sys

from mlthon import _core


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlthon._core", description=__doc__)
    parser.add_argument("--expect", choices=("compiled", "pure"), help="exit 1 unless this runs")
    args = parser.parse_args(argv)
    sys.stdout.write(_core.describe() + "\n")
    for source in _core.stale_sources():
        sys.stdout.write(f"stale: {source} changed since it was compiled (make core)\n")
    running = "compiled" if _core.COMPILED else "pure"
    if args.expect and args.expect != running:
        sys.stdout.write(f"expected the {args.expect} core, found the {running} one\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
