"""Replies → WeChat customer-service messages, and the buttons a user may press next.

WeChat has no inline keyboards. Buttons become a `msgmenu` message (tappable items; a tap comes
back as a text message carrying `bizmsgmenuid`) or, with WECHAT_BUTTONS=numbers, a numbered list;
in both a reply with the number presses the button. Texts are cut under WeChat's per-message limit,
which counts UTF-8 bytes (a Chinese character is three).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import i18n
from bot.rasa_client import Button, Reply
from bot.text import split_text as text_parts, utf8_bytes

TEXT_LIMIT = 2048  # bytes per text message
MENU_LIMIT = 1024  # head_content we put above a menu; longer text goes in a text message first
MENU_ITEMS = 10    # more buttons than this are listed as numbers only
MENU_BASE = 100    # menu item id = menu number * MENU_BASE + item number


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    return text_parts(text, limit, utf8_bytes)


@dataclass
class Menu:
    number: int
    buttons: list[Button]
    pressed: bool = False


class Menus:
    """The buttons offered to each user lately (in memory, bounded): a number or a menu tap is
    looked up here. After a restart an old menu has expired and the user is told so."""

    def __init__(self, users: int = 10_000, per_user: int = 5) -> None:
        self._users: OrderedDict[str, OrderedDict[int, Menu]] = OrderedDict()
        self._next: dict[str, int] = {}
        self.users, self.per_user = users, per_user

    def offer(self, user: str, buttons: list[Button]) -> Menu:
        number = self._next.get(user, 0) + 1
        self._next[user] = number
        menus = self._users.setdefault(user, OrderedDict())
        self._users.move_to_end(user)
        menus[number] = Menu(number, list(buttons))
        while len(menus) > self.per_user:
            menus.popitem(last=False)
        while len(self._users) > self.users:
            dropped, _ = self._users.popitem(last=False)
            self._next.pop(dropped, None)
        return menus[number]

    def latest(self, user: str) -> Menu | None:
        menus = self._users.get(user)
        return next(reversed(menus.values())) if menus else None

    def by_number(self, user: str, choice: int) -> Button | None:
        """A reply "2": the second button of the latest menu, if it was not pressed yet."""
        menu = self.latest(user)
        if menu is None or menu.pressed or not 1 <= choice <= len(menu.buttons):
            return None
        menu.pressed = True
        return menu.buttons[choice - 1]

    def by_item(self, user: str, item_id: str) -> Button | None:
        """A tap on a msgmenu item (its `bizmsgmenuid`); None when expired or already pressed."""
        if not item_id.isdigit():
            return None
        number, index = divmod(int(item_id), MENU_BASE)
        menus = self._users.get(user)
        menu = menus.get(number) if menus else None
        if menu is None or menu.pressed or not 1 <= index <= len(menu.buttons):
            return None
        menu.pressed = True
        return menu.buttons[index - 1]


def to_messages(user: str, replies: list[Reply], menus: Menus, mode: str = "menu",
                language: str = "zh") -> list[dict[str, Any]]:
    """The customer-service messages (bodies for /cgi-bin/message/custom/send) for `replies`."""
    messages: list[dict[str, Any]] = []

    def text(content: str) -> None:
        messages.append({"touser": user, "msgtype": "text", "text": {"content": content}})

    for reply in replies:
        chunks = split_text(reply.text)
        if not reply.buttons:
            for chunk in chunks:
                text(chunk)
            continue
        menu = menus.offer(user, reply.buttons)
        numbered = [f"{i}. {b.title}" for i, b in enumerate(reply.buttons, 1)]
        if mode == "menu" and len(reply.buttons) <= MENU_ITEMS:
            head = chunks.pop() if chunks and utf8_bytes(chunks[-1]) <= MENU_LIMIT else ""
            for chunk in chunks:
                text(chunk)
            messages.append({"touser": user, "msgtype": "msgmenu", "msgmenu": {
                "head_content": head or i18n.t("wechat_choose", language),
                "list": [{"id": str(menu.number * MENU_BASE + i), "content": title[:60]}
                         for i, title in enumerate(numbered, 1)],
                "tail_content": i18n.t("wechat_menu_hint", language),
            }})
        else:
            listing = "\n".join(numbered + [i18n.t("wechat_number_hint", language)])
            for chunk in split_text("\n\n".join(filter(None, [*chunks, listing]))):
                text(chunk)
    return messages
