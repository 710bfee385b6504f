"""``python -m mlthon.infra.telegram --config telegram.toml``."""

import sys

from mlthon.infra.telegram.cli import telegram_main

if __name__ == "__main__":
    sys.exit(telegram_main(sys.argv[1:]))
