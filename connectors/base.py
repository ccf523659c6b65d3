"""The connector interface, the credentials-store interface, and their errors.

Connectors never import `store`: the caller passes a `CredentialsStore` that persists
tokens (encrypted, committed) and provides a cross-process refresh lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from portal_rules.records import Page


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str
    access_expires_at: datetime  # timezone-aware UTC
    refresh_expires_at: datetime | None = None


class CredentialsStore(Protocol):
    """Persistence for one connection's OAuth tokens, provided by the caller."""

    def load(self) -> Tokens | None:
        """The current tokens, re-read from durable storage (another process may have rotated them)."""

    def save(self, tokens: Tokens) -> None:
        """Persist and commit `tokens` before returning."""

    def refresh_lock(self) -> AbstractContextManager[None]:
        """Held while refreshing, so only one process refreshes this connection at a time."""

    def mark_reconnect_needed(self, reason: str) -> None:
        """Record that the refresh token was refused (`invalid_grant`), or that none is stored:
        an admin must reconnect. Unless new tokens were stored since the last `load` (an
        admin reconnecting while this failed): those are left usable."""


class CursorError(ValueError):
    """A cursor this connector did not write (or a newer version of it wrote)."""


class OutdatedCursor(CursorError):
    """A cursor an earlier release wrote: what it pulled lacks what this release stores, so a
    full pull starts (an upgrade, not a fault)."""


def earlier_version(raw: object, current: int) -> int | None:
    """The version an earlier release wrote `raw` with (an int from 1 to `current` − 1), or None."""
    version = raw.get("v") if isinstance(raw, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and 1 <= version < current:
        return version
    return None


def cursor_problem(
    read: Callable[[dict], object], cursor: dict, report: Callable[[CursorError], None]
) -> str | None:
    """`ChecksCursor.cursor_problem` for a connector whose cursors `read` parses (raising
    `CursorError`): None when it reads, else the error, given to `report` and in words."""
    try:
        read(cursor)
    except CursorError as error:
        report(error)
        return str(error)
    return None


class ConnectorError(Exception):
    """A sync-stopping failure with a message fit for `arsync status`."""


class ReconnectNeeded(ConnectorError):
    """The refresh token was refused, or no tokens are stored; retrying cannot help.

    `recorded`: the credentials store has already marked the connection (`CredentialsStore.
    mark_reconnect_needed`, which knows whether new tokens landed meanwhile), so the caller
    must not mark it again over them.
    """

    def __init__(self, message: str, *, recorded: bool = False) -> None:
        super().__init__(message)
        self.recorded = recorded


class TokensUnreadable(ConnectorError):
    """The stored tokens cannot be read with the secret key at hand (none set, or another):
    retrying cannot help, and the connection itself is not lost (the right key reads them)."""


class Stopped(ConnectorError):
    """A stop was requested while the connector waited (backoff, Retry-After, pacing): the
    sync ends as interrupted and the next run resumes from the last committed cursor."""


class DailyLimitReached(ConnectorError):
    """The provider's daily call limit is spent; sync resumes after `retry_at`."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class Connector(Protocol):
    """A source of pages; it may also be `ConfirmsPresence` (optional, below)."""

    kind: str

    def pages(self, cursor: dict | None, *, full: bool = False) -> Iterator[Page]:
        """Yield pages of normalized records, customers before invoices.

        `cursor` is the last committed page cursor (None: never synced). With `full=True`
        everything is re-read and the final page has `full_sync_complete=True`.
        """


@runtime_checkable
class ChecksCursor(Protocol):
    """The optional part of a `Connector` that tells, before a run begins, whether it can go
    on from a stored cursor. A cursor it cannot (another version's, unreadable) makes the
    run a full pull from its start: marked full, its deletions reconciled at its end, as
    `arsync sync --full` would be (without it, `pages()` starts over by itself, unmarked)."""

    def cursor_problem(self, cursor: dict) -> str | None:
        """None when `pages(cursor)` goes on from `cursor`; otherwise why not, in words
        (the connector logs it)."""


@runtime_checkable
class ConfirmsPresence(Protocol):
    """The optional part of a `Connector`: built-in connectors have it, others may not
    (check with `isinstance(connector, ConfirmsPresence)`; without it, missing records are
    marked deleted unconfirmed, as before). A connector that also keeps a `presence_calls`
    count of the requests `confirm_present` made has them added to the sync's API calls."""

    def confirm_present(self, entity: str, refs: Sequence[str]) -> set[str]:
        """The `refs` of `entity` ("customers", "invoices", "payments" or "credits") the source
        still has, asked by id in batches (a few requests per thousand refs).

        Called before the end of a full pull marks the records it did not return deleted:
        paging shifts under concurrent edits, so a live record can be missed. A record the
        source holds as deleted is absent; a voided or inactive one is present. Raises
        `ConnectorError` (and its kinds) as `pages()` does.
        """
