"""`python -m bot.telegram`: the Telegram gateway alone (TELEGRAM_BOT_TOKEN must be set)."""
from bot.telegram.app import main

main()
