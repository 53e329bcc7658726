"""Builds the Telegram Application and runs it (polling by default, webhook by setting).

    python -m bot            # TELEGRAM_BOT_TOKEN set: this; unset: the terminal chat (bot/terminal/)
    python -m bot.telegram   # this alone (refuses to start without a token)
"""
from __future__ import annotations

import asyncio
import logging

from telegram import BotCommand, BotCommandScopeDefault, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.conversation import ConversationService
from bot.memory import release_freed_memory_every
from bot.rasa_client import RasaClient, wait_for_rasa
from bot.settings import BotSettings
from bot.telegram.handlers import Gateway, on_error
from bot.telegram.inbox import InboxQueue, TelegramInbox
from bot.telegram.processor import PerChatUpdateProcessor
from bot.telegram.retry import RetryingRateLimiter
from store import get_database
from store.kinds import Channel

logger = logging.getLogger(__name__)

COMMANDS = {
    "en": [
        ("start", "Welcome and language"),
        ("help", "What I can do"),
        ("language", "English or 中文"),
        ("bookings", "My bookings"),
        ("human", "Talk to staff"),
        ("cancel", "Leave the current form"),
        ("forget", "Delete my data"),
    ],
    "zh": [
        ("start", "欢迎与语言选择"),
        ("help", "我能做什么"),
        ("language", "English 或 中文"),
        ("bookings", "我的预约"),
        ("human", "转人工"),
        ("cancel", "退出当前填写"),
        ("forget", "删除我的数据"),
    ],
}


def register_handlers(application: Application, gateway: Gateway) -> None:
    """Every handler, in one readable place. Order matters: the first matching group wins."""
    private_or_group = filters.ChatType.PRIVATE | filters.ChatType.GROUPS
    # The commands' answers are the conversation service's (bot/conversation.py), as on every channel.
    application.add_handler(CommandHandler([name for name, _ in COMMANDS["en"]], gateway.on_command))
    if gateway.handoff:
        gateway.handoff.register(application)
    application.add_handler(CallbackQueryHandler(gateway.on_button))
    application.add_handler(MessageHandler(filters.UpdateType.EDITED, gateway.on_edited))
    application.add_handler(MessageHandler(filters.COMMAND & private_or_group, gateway.on_unknown_command))
    application.add_handler(MessageHandler(filters.TEXT & private_or_group, gateway.on_text))
    application.add_handler(MessageHandler(filters.CONTACT, gateway.on_contact))
    application.add_handler(MessageHandler(filters.LOCATION | filters.VENUE, gateway.on_location))
    application.add_handler(MessageHandler(filters.ALL & ~filters.StatusUpdate.ALL, gateway.on_other))
    application.add_error_handler(on_error)


async def register_commands(application: Application) -> None:
    for language, commands in COMMANDS.items():
        await application.bot.set_my_commands(
            [BotCommand(name, description) for name, description in commands],
            scope=BotCommandScopeDefault(),
            language_code=None if language == "en" else language,
        )


async def start_health_server(application: Application, settings: BotSettings, rasa: RasaClient, db) -> None:
    from bot import metrics
    from bot.health import HealthChecks, HealthServer

    metrics.register_store(db)
    checks = HealthChecks(rasa, settings.action_url, db, application.bot)
    server = HealthServer(checks, settings.health_listen, settings.health_port)
    await server.start()
    application.bot_data["health_server"] = server
    application.bot_data["health_checks"] = checks


def build_application(settings: BotSettings, db=None) -> Application:
    db = db or get_database()
    db.warm()  # the pool's connections from the start
    rasa = RasaClient(settings.rasa_url, settings.rasa_token, settings.rasa_timeout)
    service = ConversationService(db, rasa, settings.rasa_hold_window, durable=True)
    handoff = None
    if settings.staff_chat_id is not None:
        from bot.telegram.handoff import HandoffRelay

        handoff = HandoffRelay(service, settings)
    telegram_inbox = TelegramInbox(service)
    gateway = Gateway(service, handoff, telegram_inbox)

    async def post_init(application: Application) -> None:
        if settings.health_port:  # before waiting for Rasa: a starting gateway reports it
            await start_health_server(application, settings, rasa, db)
        await register_commands(application)
        await wait_for_rasa(rasa)
        from bot.telegram.notifications import start_notifier

        start_notifier(application, service, settings, handoff)
        application.bot_data["memory_task"] = asyncio.create_task(release_freed_memory_every())
        # What a gateway that died received and did not answer: handled again (queued now, ahead
        # of any new update), answered, or the user asked to send it again.
        await service.start_recovery(
            Channel.TELEGRAM, lambda chat_id, replies: gateway.send_to(application.bot, chat_id, replies),
            telegram_inbox.replay)

    async def post_shutdown(application: Application) -> None:
        from bot.telegram.notifications import stop_notifier

        await stop_notifier(application)
        if "memory_task" in application.bot_data:
            application.bot_data.pop("memory_task").cancel()
        await service.stop_recovery()
        if "health_server" in application.bot_data:
            await application.bot_data.pop("health_server").stop()
        await rasa.close()

    application = (
        Application.builder()
        .token(settings.token)
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .rate_limiter(RetryingRateLimiter(max_retries=3))  # 429s waited out; 502s, drops retried
        .update_queue(InboxQueue(telegram_inbox))  # every update recorded before it is queued
        .concurrent_updates(PerChatUpdateProcessor(256, settings.chat_rate, settings.chat_rate_window,
                                                   finished=telegram_inbox.finished))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    application.bot_data["gateway"] = gateway
    telegram_inbox.queue, telegram_inbox.bot = application.update_queue, application.bot
    register_handlers(application, gateway)
    return application


async def check_token(settings: BotSettings) -> None:
    """Fail once, clearly, on a wrong token (PTB would log a traceback from its retry loop)."""
    from telegram import Bot

    bot = Bot(settings.token, base_url=settings.base_url)
    try:
        await bot.get_me()
    except InvalidToken:
        raise SystemExit("error: Telegram rejected TELEGRAM_BOT_TOKEN (check the token from @BotFather)") from None
    except TelegramError as error:
        raise SystemExit(f"error: cannot reach the Telegram Bot API at {settings.base_url}: {error}") from None


def run_telegram(settings: BotSettings) -> None:
    asyncio.run(check_token(settings))
    application = build_application(settings)
    try:
        if settings.mode == "webhook":
            if not settings.webhook_url or not settings.webhook_secret:
                raise SystemExit("error: webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET")
            # PTB checks the X-Telegram-Bot-Api-Secret-Token header against secret_token.
            application.run_webhook(
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                url_path=settings.webhook_path,
                webhook_url=settings.webhook_url,
                secret_token=settings.webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
        else:
            application.run_polling(allowed_updates=Update.ALL_TYPES)
    except InvalidToken:
        raise SystemExit("error: Telegram rejected TELEGRAM_BOT_TOKEN (check the token from @BotFather)") from None
    except TelegramError as error:
        raise SystemExit(f"error: Telegram: {error}") from None


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = BotSettings()
    if not settings.token:
        raise SystemExit("error: the Telegram gateway needs TELEGRAM_BOT_TOKEN (README: Settings)")
    run_telegram(settings)
