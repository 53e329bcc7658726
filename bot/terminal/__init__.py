"""The terminal chat: the conversation service (bot.conversation) in a terminal, buttons as
numbered choices. `python -m bot` runs it when no TELEGRAM_BOT_TOKEN is set;
`python -m bot.terminal` always."""
