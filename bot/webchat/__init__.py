"""The website chat: an embeddable widget (one script tag) and its WebSocket server, a thin
channel over the same conversation service as Telegram and the terminal chat (channel "web").

server.py     the Starlette app: widget files, demo page, the WebSocket, staff replies pushed
origins.py    which pages may talk to it (WEBCHAT_ALLOWED_ORIGINS)
settings.py   WEBCHAT_* settings
static/       widget.js, widget.css, demo.html (plain files, no build step)
"""
