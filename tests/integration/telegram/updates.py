"""Real Telegram update samples (``data/``), adjusted per test."""

from __future__ import annotations

import copy
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"

ADMIN = 111
TRADER = 222
VIEWER = 333
STRANGER = 999
GROUP = -100777


@cache
def sample(name: str) -> dict[str, Any]:
    """A sample file, parsed (copy before changing it)."""
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts entity offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


def user(user_id: int) -> dict[str, Any]:
    """A sender based on command.json's ``from``."""
    u: dict[str, Any] = copy.deepcopy(sample("command.json")["message"]["from"])
    u.update(id=user_id, username=f"user{user_id}", first_name=f"User{user_id}")
    u.pop("last_name", None)
    return u


def command(
    text: str, *, sender: int = TRADER, chat: int | None = None, age_s: float = 0.0
) -> dict[str, Any]:
    """command.json with ``text``, sent by ``sender`` in ``chat`` (their private chat by
    default), with the ``bot_command`` entity Telegram adds for a leading ``/cmd[@bot]``."""
    update = copy.deepcopy(sample("command.json"))
    msg = update["message"]
    msg["from"] = user(sender)
    if chat is None or chat > 0:
        msg["chat"] = {
            "id": chat or sender,
            "type": "private",
            "first_name": f"User{sender}",
            "username": f"user{sender}",
        }
    else:
        msg["chat"] = {"id": chat, "type": "supergroup", "title": "trading desk"}
    msg["date"] = int(time.time() - age_s)
    msg["text"] = text
    first = text.split()[0] if text.split() else ""
    if first.startswith("/"):
        msg["entities"] = [{"offset": 0, "length": utf16_len(first), "type": "bot_command"}]
    else:
        msg.pop("entities", None)
    return update


def press(data: str, *, sender: int, chat: int, message_id: int) -> dict[str, Any]:
    """callback_query.json: ``sender`` pressed a button carrying ``data`` under the bot's
    message ``message_id`` in ``chat``."""
    update = copy.deepcopy(sample("callback_query.json"))
    q = update["callback_query"]
    q["id"] = f"cb{message_id}{sender}"
    q["from"] = user(sender)
    q["data"] = data
    q["message"]["message_id"] = message_id
    q["message"]["chat"] = (
        {"id": chat, "type": "private", "first_name": f"User{chat}"}
        if chat > 0
        else {"id": chat, "type": "supergroup", "title": "trading desk"}
    )
    q["message"]["date"] = int(time.time())
    return update
