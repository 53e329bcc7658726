"""Staff console: the web pages where TÜV Rheinland staff take over handed-off conversations,
read transcripts, label misunderstood messages and watch the assistant's figures.

Starlette + Jinja2, server-rendered, no JavaScript; it reads and writes the shared store.
"""
