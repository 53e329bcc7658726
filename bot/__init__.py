"""The Telegram gateway: python-telegram-bot 22 in front of the Rasa server.

`bot.app.main()` builds the Application; without a token, `bot.local_chat` serves the same
conversation code in the terminal.
"""
