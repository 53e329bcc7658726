"""The Telegram channel: python-telegram-bot 22 in front of the conversation service (bot.conversation).

app.py            builds the Application (handlers in one place) and runs it: polling or webhook
handlers.py       the user-facing handlers: text, buttons, commands, everything else
handoff.py        the staff group: handoff alerts, claims, staff replies, /resume
notifications.py  the notifier's Telegram delivery (reminders, staff replies, alerts)
rendering.py      replies as messages: split under 4096 characters, buttons as inline keyboards
processor.py      updates in order per chat, concurrent across chats, a flood slowed
retry.py          Bot API calls retried through 429s and network drops
updates.py        what a handler takes from an update its filter guarantees
"""
