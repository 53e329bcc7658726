"""`python -m bot.webchat`: the website chat server (WEBCHAT_PORT must be set)."""
from __future__ import annotations

import logging
import sys

import uvicorn

from bot.settings import BotSettings
from bot.webchat.server import create_app
from bot.webchat.settings import WebchatSettings
from store import get_database


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = WebchatSettings()
    if not settings.enabled:
        sys.exit("error: set WEBCHAT_PORT to run the web chat (README: Settings)")
    db = get_database()
    db.create_all()  # the schema up to date (Alembic), as the console does
    # Frames are small (a message is cut at 4000 characters); refuse anything much larger.
    uvicorn.run(create_app(settings, BotSettings(), db), host=settings.host, port=settings.port,
                ws_max_size=32 * 1024, proxy_headers=True, log_level="info")


if __name__ == "__main__":
    main()
