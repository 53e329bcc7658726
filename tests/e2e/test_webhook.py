"""Webhook mode: Telegram's secret-token header is checked before an update is accepted."""
from __future__ import annotations

import time

import httpx

import i18n
from bot.settings import BotSettings
from bot.telegram.app import build_application
from tests.fakes.bot_api import TOKEN, FakeBotApi, free_port


async def test_webhook_rejects_wrong_secret_and_accepts_right_one(stack):
    api = FakeBotApi()
    await api.start()
    settings = BotSettings(token=TOKEN, base_url=api.base_url, rasa_url=stack.rasa_url,
                           rasa_token=stack.settings.rasa_token, mode="webhook")
    application = build_application(settings, stack.db)
    port = free_port()
    await application.initialize()
    await application.post_init(application)
    await application.start()
    await application.updater.start_webhook(
        listen="127.0.0.1", port=port, url_path="telegram",
        webhook_url="https://bot.example.org/telegram", secret_token="s3cret-token",
    )
    try:
        set_webhook = api.sent(method="setWebhook")
        assert set_webhook and set_webhook[-1]["secret_token"] == "s3cret-token"
        user = 55_000_000 + int(time.time()) % 1000
        update = {"update_id": int(time.time() * 1000) % 10**9,
                  "message": api.message(user, "/help")}
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/telegram"
            wrong = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
            missing = await client.post(url, json=update)
            assert wrong.status_code == 403 and missing.status_code == 403
            assert api.texts(user) == []
            right = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"})
            assert right.status_code == 200
        texts = await api.wait_sent(user, 1)
        assert texts == [i18n.t("help", "en").strip()]
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
        await application.post_shutdown(application)
        await api.stop()
