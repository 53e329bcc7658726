"""The channels in front of the Rasa server, each a thin adapter over one conversation service.

Shared (channel-neutral): conversation.py (the turn service: language, transcripts, handoff
pause, /forget, duplicate claims, the Rasa-unavailable answer), rasa_client.py, notifier.py,
ratelimit.py, text.py, settings.py, metrics.py, health.py, store_faults.py.
Adapters: telegram/ (`python -m bot` with a token), terminal/ (`python -m bot` without one),
wechat/ (`python -m bot.wechat`), webchat/ (`python -m bot.webchat`).
"""
