"""Sync requests wake the workers at once on PostgreSQL (LISTEN/NOTIFY); SQLite workers poll.

`store.schedule.request_sync` notifies a channel in the transaction that records the
request (PostgreSQL delivers it at commit); each worker listens on a connection of its own
and wakes its loop, so a webhook's sync starts without waiting for the next tick. The
poll of the schedule table stays the guarantee: a notification lost while the listener
reconnects delays a request by one tick, never loses it. Channels are per database, so
workers on other schemas of the same database may wake for nothing: one extra poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog
from sqlalchemy import Connection, Engine, bindparam, func, select

log = structlog.get_logger("arsync.daemon")
CHANNEL = "arsync_sync_requested"
RECONNECT_AFTER = 5.0  # seconds between attempts while the store is unreachable


def notify_requested(connection: Connection, company_id: str, *, when: bool = True) -> None:
    """Tell listening workers that `company_id` has a request (no-op on SQLite). With `when`
    false, the same statement runs and notifies nobody: a caller whose statements must not
    depend on its data (request access) runs it either way."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_notify(CHANNEL, company_id)).where(bindparam("when", when)))


class RequestListener(threading.Thread):
    """Calls `on_request(company_id)` for each notification until `stopping` is set."""

    def __init__(self, engine: Engine, on_request: Callable[[str], None], stopping: threading.Event) -> None:
        super().__init__(name="request-listener", daemon=True)
        self.engine, self.on_request, self.stopping = engine, on_request, stopping
        self.listening = threading.Event()  # set while LISTEN is in force (tests wait for it)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._listen()
            except Exception as exc:  # noqa: BLE001  (store restarting, network: the poll covers it)
                self.listening.clear()
                log.warning("daemon.listener_lost", error=f"{type(exc).__name__}: {exc}")
                self.stopping.wait(RECONNECT_AFTER)

    def _listen(self) -> None:
        pooled = self.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # ours for as long as we listen, never handed back to the pool
        try:
            connection.rollback()
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            while not self.stopping.is_set():
                for note in connection.notifies(timeout=1.0):
                    self.on_request(note.payload)
        finally:
            self.listening.clear()
            pooled.close()
