"""/health in both ways the gateway runs, as a real process (`python -m bot`): polling and
webhook mode each serve it (run_polling and run_webhook drive post_init differently from the
in-process fixtures), report every part up, and the process still stops cleanly on SIGTERM
(the health server must not take PTB's signal handling)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import httpx
import pytest

from stack.settings import APP_PYTHON, ROOT
from tests.fakes.bot_api import TOKEN, FakeBotApi, free_port


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_health_in_each_mode(stack, tmp_path, mode: str) -> None:
    api = FakeBotApi()
    await api.start()
    health_port = free_port()
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_BASE_URL": api.base_url,
           "TELEGRAM_BASE_FILE_URL": api.base_url, "TELEGRAM_MODE": mode,
           "RASA_URL": stack.rasa_url, "RASA_TOKEN": stack.settings.rasa_token,
           "DATABASE_URL": str(stack.db.url), "DATA_DIR": str(tmp_path),
           "HEALTH_PORT": str(health_port), "ACTION_URL": f"http://127.0.0.1:{stack.settings.action_port}",
           "WEBHOOK_URL": "https://bot.example.org/telegram", "WEBHOOK_SECRET": "s3cret",
           "WEBHOOK_PORT": str(free_port()), "WEBHOOK_LISTEN": "127.0.0.1"}
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        gateway = subprocess.Popen([str(APP_PYTHON), "-m", "bot"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        body, deadline = None, time.monotonic() + 60
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline and gateway.poll() is None:
                try:
                    response = await client.get(f"http://127.0.0.1:{health_port}/health")
                    if response.status_code == 200:
                        body = response.json()
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)
            assert body is not None, log.read_text()[-3000:]
            assert all(part["up"] for part in body["parts"].values()), body
            metrics = await client.get(f"http://127.0.0.1:{health_port}/metrics")
            assert metrics.status_code == 200 and "score_turns_total" in metrics.text
        if mode == "webhook":
            assert api.sent(method="setWebhook")[-1]["url"] == "https://bot.example.org/telegram"
        gateway.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(gateway.wait, 20)
        assert code == 0, log.read_text()[-3000:]
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()
        await api.stop()
