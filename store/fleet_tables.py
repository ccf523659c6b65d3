"""Tables of the worker fleet (SPEC §11): schedules, periodic jobs, workers, stored companies, pacing.

One table per concept, as in Nango's scheduler: a schedule row per company carries its
next due time, a pending request and the claim of the worker running it; claims expire,
so a killed worker's work goes back to the others.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, Text
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime


def _when(nullable: bool = True) -> Column:
    return Column(UTCDateTime(), nullable=nullable)


class SyncSchedule(SQLModel, table=True):
    """When each company's next sync is due, whether one was requested, and who runs it."""

    __tablename__ = "sync_schedule"
    __table_args__ = (Index("ix_sync_schedule_due", "next_due_at"),)
    company_id: str = Field(primary_key=True, max_length=64)
    next_due_at: datetime = Field(sa_column=_when(nullable=False))
    requested_at: datetime | None = Field(default=None, sa_column=_when())  # pending request, coalesced
    request_reason: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by: str | None = None  # the worker running it now
    claimed_until: datetime | None = Field(default=None, sa_column=_when())  # renewed while running
    last_worker: str | None = None
    last_started_at: datetime | None = Field(default=None, sa_column=_when())
    last_finished_at: datetime | None = Field(default=None, sa_column=_when())
    last_status: str | None = None
    # syncs in a row a worker began and never finished (killed, lost): each holds it back longer
    abandoned_runs: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class FleetJob(SQLModel, table=True):
    """A periodic job done once per interval across all workers (reminders, dispatch, keep-alive)."""

    __tablename__ = "fleet_jobs"
    name: str = Field(primary_key=True, max_length=64)
    next_due_at: datetime = Field(sa_column=_when(nullable=False))
    claimed_by: str | None = None
    claimed_until: datetime | None = Field(default=None, sa_column=_when())
    last_worker: str | None = None
    last_run_at: datetime | None = Field(default=None, sa_column=_when())


class WorkerRow(SQLModel, table=True):
    """A live `arsync run` worker; its heartbeat tells the living from the dead."""

    __tablename__ = "workers"
    worker: str = Field(primary_key=True, max_length=255)
    host: str
    pid: int
    concurrency: int
    started_at: datetime = Field(sa_column=_when(nullable=False))
    heartbeat_at: datetime = Field(sa_column=_when(nullable=False))
    alive_until: datetime = Field(sa_column=_when(nullable=False))  # counted dead after this
    running: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list of company ids


class CompanyDefinition(SQLModel, table=True):
    """A company added with `arsync company add`: its `[[companies]]` table as JSON."""

    __tablename__ = "company_definitions"
    company_id: str = Field(primary_key=True, max_length=64)
    definition: str = Field(sa_column=Column(Text, nullable=False))
    added_at: datetime = Field(sa_column=_when(nullable=False))


class Pacing(SQLModel, table=True):
    """One company's API budget shared by every process: sends, requests in flight, counts left."""

    __tablename__ = "pacing"
    company_id: str = Field(primary_key=True, max_length=64)
    sent: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON epoch seconds
    in_flight: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON token -> expiry
    # JSON: the provider's remaining-request count and the send tickets it is judged by
    # (`store.pacing.Counts`)
    counts: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
