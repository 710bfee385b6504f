"""Who may run which command: roles, per-command permissions and chat rules. Pure, no I/O.

Roles are ordered ``viewer < trader < admin``; a command is allowed when the sender's role is at
least the command's required role. Defaults:

* viewer: ``status``, ``strategies``, ``help``;
* trader: also ``start``, ``params`` and every hook (``hook``);
* admin: also ``stop``, ``risk`` (the trading state, ``docs/risk.md``) and every dangerous hook
  (``dangerous_hook``).

A hook can be given its own entry (``flatten = "admin"``). Users not listed in any role are
refused everywhere. In group chats, listed users have control only in chats the bridge knows (the
ops chat, a strategy's chat, or a ``control`` chat), so adding the bot to another group gives its
members nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs


class Role(enum.IntEnum):
    """A user's role; a higher value may do everything a lower one may."""

    VIEWER = 1
    TRADER = 2
    ADMIN = 3


ROLE_NAMES: Mapping[str, Role] = {"viewer": Role.VIEWER, "trader": Role.TRADER, "admin": Role.ADMIN}

HOOK = "hook"
DANGEROUS_HOOK = "dangerous_hook"

DEFAULT_PERMISSIONS: Mapping[str, Role] = {
    "help": Role.VIEWER,
    "status": Role.VIEWER,
    "strategies": Role.VIEWER,
    "start": Role.TRADER,
    "params": Role.TRADER,
    HOOK: Role.TRADER,
    "stop": Role.ADMIN,
    "risk": Role.ADMIN,
    DANGEROUS_HOOK: Role.ADMIN,
}

_GROUP_TYPES = frozenset({"group", "supergroup"})


@attrs.frozen
class Decision:
    """The answer to "may this user run this command here?".

    Attributes:
        allowed: whether the command may run.
        role: the sender's role, None for strangers.
        required: the least role the command needs.
        reason: why it was refused ("" when allowed).
    """

    allowed: bool
    role: Role | None
    required: Role
    reason: str = ""


@attrs.frozen
class AccessPolicy:
    """Roles and permissions from the config.

    Attributes:
        users: Telegram user id -> role.
        permissions: command name -> least role.
        group_chats: group chats where listed users may give commands.
    """

    users: Mapping[int, Role]
    permissions: Mapping[str, Role] = attrs.field(factory=lambda: dict(DEFAULT_PERMISSIONS))
    group_chats: frozenset[int] = frozenset()

    def role_of(self, user_id: int) -> Role | None:
        """The role of ``user_id``, None if the user is not listed."""
        return self.users.get(user_id)

    def required_role(
        self, command: str, *, is_hook: bool = False, dangerous: bool = False
    ) -> Role:
        """The least role that may run ``command`` (lower-case name).

        Hooks without their own entry need the ``hook`` or ``dangerous_hook`` role; an unknown
        built-in needs admin.
        """
        own = self.permissions.get(command)
        if own is not None:
            return own
        if is_hook:
            key = DANGEROUS_HOOK if dangerous else HOOK
            return self.permissions.get(key, DEFAULT_PERMISSIONS[key])
        return Role.ADMIN

    def check(
        self,
        user_id: int,
        chat_id: int,
        chat_type: str,
        command: str,
        *,
        is_hook: bool = False,
        dangerous: bool = False,
    ) -> Decision:
        """Decide whether ``user_id`` may run ``command`` in chat ``chat_id``.

        Args:
            user_id: the sender's Telegram id.
            chat_id: the chat the command came from.
            chat_type: ``private``, ``group``, ``supergroup`` or ``channel``.
            command: the lower-case command name.
            is_hook: the command is a strategy hook.
            dangerous: the hook is marked dangerous.
        """
        required = self.required_role(command, is_hook=is_hook, dangerous=dangerous)
        role = self.role_of(user_id)
        if role is None:
            return Decision(False, None, required, "not authorised")
        if chat_type in _GROUP_TYPES and chat_id not in self.group_chats:
            return Decision(False, role, required, "commands are not accepted in this chat")
        if chat_type not in _GROUP_TYPES and chat_type != "private":
            return Decision(False, role, required, f"commands are not accepted in a {chat_type}")
        if role < required:
            return Decision(False, role, required, f"needs role {required.name.lower()}")
        return Decision(True, role, required)
