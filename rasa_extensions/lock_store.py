"""Rasa's Redis lock store, made safe for several Rasa servers. Loaded inside the Rasa server
(endpoints.yml `lock_store: type: rasa_extensions.lock_store.AtomicRedisLockStore`); imports Rasa.

Rasa 3.6's RedisLockStore keeps a conversation's ticket queue in one Redis value and changes
it by read, modify, write (issue a ticket, drop a served or expired one, delete the lock). Two
servers doing that at once overwrite each other's ticket, both find "their" ticket first in
the queue, both run a turn of the same conversation on the same tracker, and the SQL tracker
store then saves only one turn's events (tests/e2e/test_replicas.py lost a user message in
10 concurrent ones that way). Here every read-modify-write of a conversation's lock runs under
a short Redis mutex of that conversation, so the ticket queue is exact across servers.
"""
from __future__ import annotations

from rasa.core.lock_store import LOCK_LIFETIME, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

MUTEX_TIMEOUT = 10.0  # seconds a crashed holder keeps the mutex (it is held for milliseconds)


class AtomicRedisLockStore(RedisLockStore):
    def __init__(self, endpoint_config: EndpointConfig) -> None:
        super().__init__(host=endpoint_config.url or "localhost", **endpoint_config.kwargs)

    def _mutex(self, conversation_id: str):
        return self.red.lock(
            f"{self.key_prefix}mutex:{conversation_id}",
            timeout=MUTEX_TIMEOUT, sleep=0.002, blocking_timeout=MUTEX_TIMEOUT,
        )

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        with self._mutex(conversation_id):
            return super().issue_ticket(conversation_id, lock_lifetime)

    def update_lock(self, conversation_id: str) -> None:
        with self._mutex(conversation_id):
            super().update_lock(conversation_id)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        with self._mutex(conversation_id):
            super().finish_serving(conversation_id, ticket_number)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        # One mutex for the whole step: nobody may take a ticket between "no one is waiting"
        # and the deletion of the lock.
        with self._mutex(conversation_id):
            LockStore.finish_serving(self, conversation_id, ticket_number)
            if not self.is_someone_waiting(conversation_id):
                self.delete_lock(conversation_id)
