"""``python -m mlthon`` is the ``mlthon`` command."""

import sys

from mlthon.cli import main

sys.exit(main())
