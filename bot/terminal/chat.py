"""A chat in the terminal, for when no Telegram token is set.

It runs the gateway's own conversation code (bot.conversation) against the same Rasa server
and store; buttons are shown as numbered choices: type the number to press one.
"""
from __future__ import annotations

import asyncio
import getpass
import sys

import i18n
from bot.conversation import ConversationService, Incoming, language_buttons
from bot.rasa_client import Button, RasaClient, Reply, wait_for_rasa
from bot.settings import BotSettings
from store import get_database
from store.kinds import Channel


def render(replies: list[Reply]) -> list[Button]:
    """Print replies; return the buttons of the last one (the ones a number can press)."""
    buttons: list[Button] = []
    for reply in replies:
        if reply.text:
            print(
                "\n".join(
                    f"bot> {line}" if i == 0 else f"     {line}" for i, line in enumerate(reply.text.splitlines())
                )
            )
        buttons = reply.buttons
        for number, button in enumerate(buttons, 1):
            print(f"     [{number}] {button.title}")
    return buttons


async def read_line(prompt: str) -> str | None:
    try:
        return await asyncio.to_thread(input, prompt)
    except EOFError:
        return None


async def run_local_chat(settings: BotSettings) -> None:
    rasa = RasaClient(settings.rasa_url, settings.rasa_token, settings.rasa_timeout)
    print(f"Waiting for the Rasa server at {settings.rasa_url} ...", flush=True)
    await wait_for_rasa(rasa)
    service = ConversationService(get_database(), rasa, settings.rasa_hold_window)
    name = getpass.getuser()

    async def notify(replies: list[Reply]) -> None:  # "please wait" while Rasa is restarting
        render(replies)

    def incoming(text: str, **extra) -> Incoming:
        return Incoming(channel=Channel.LOCAL, external_id=name, text=text, chat_id=None, display_name=name,
                        notify=notify, **extra)

    user = await service.user_for(incoming(""))
    print("Local chat with the SCORE assistant (no TELEGRAM_BOT_TOKEN set). Type /help, /quit to leave.\n")
    buttons = render([Reply(text=i18n.t("welcome", user.language), buttons=language_buttons())])
    try:
        while True:
            line = await read_line("you> ")
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            text = line.strip()
            if text.isdigit() and buttons and 1 <= int(text) <= len(buttons):
                button = buttons[int(text) - 1]
                result = await service.press(incoming(button.payload), button.payload, button.title)
            elif text.startswith("/") and len(text) > 1:
                words = text.split()
                result = await service.command(incoming(text), words[0][1:].lower(), words[1:])
            else:
                result = await service.handle(incoming(text))
            user = result.user
            if result.paused:
                print("bot> (a colleague has this conversation; your message was passed on)")
                continue
            buttons = render(result.replies)
    except KeyboardInterrupt:
        pass
    finally:
        await rasa.close()
        print("\nbye")
    sys.stdout.flush()
