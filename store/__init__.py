"""The shared store: SQLAlchemy models and the services that change them.

Used by the action server, the Telegram gateway and the staff console. Nothing here imports
those packages: dependencies point one way, towards the store.
"""
from store.db import Database, default_database_url, get_database

__all__ = ["Database", "default_database_url", "get_database"]
