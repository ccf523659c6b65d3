from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mailer.admin import OutboxError, counts, drop, entries, resend
from mailer.dispatch import dispatch
from mailer.outbox import OUTBOX
from mailer.render import render_invitation
from mailer.transports import FileTransport
from tests.mailer.conftest import NOW, no_window, put, rows


@pytest.fixture
def three(engine, sender, invitation) -> list[int]:
    messages = [render_invitation(sender, invitation, key=f"invitation:{n}", now=NOW) for n in range(3)]
    return put(engine, messages, automatic=False, not_before=NOW, kind="invitation")


def set_status(engine, row_id: int, status: str, **values) -> None:
    with engine.begin() as connection:
        connection.execute(update(OUTBOX).where(OUTBOX.c.id == row_id).values(status=status, **values))


def test_counts_per_status_scoped_by_company(engine, three):
    set_status(engine, three[0], "failed")
    set_status(engine, three[1], "in_doubt")

    assert counts(engine, "acme") == {"queued": 1, "failed": 1, "in_doubt": 1}
    assert counts(engine, "globex") == {}


def test_entries_list_what_needs_an_admin(engine, three):
    set_status(engine, three[0], "failed", last_error="550 no such user", attempts=1)
    set_status(engine, three[2], "in_doubt")

    listed = entries(engine, "acme")

    assert [(e.id, e.status) for e in listed] == [(three[2], "in_doubt"), (three[0], "failed")]
    assert listed[1].last_error == "550 no such user" and listed[1].recipient == "zoe@cafe.example"
    assert entries(engine, "globex") == []


@pytest.mark.parametrize("status", ["in_doubt", "failed"])
def test_resend_queues_again_with_a_fresh_budget(engine, three, status, tmp_path):
    set_status(
        engine, three[0], status, attempts=8, last_error="boom", next_attempt_at=NOW + timedelta(days=9)
    )

    resend(engine, "acme", three[0])

    row = rows(engine)[three[0]]
    assert (row.status, row.attempts, row.last_error, row.next_attempt_at) == ("queued", 0, None, None)
    report = dispatch(engine, FileTransport(tmp_path), now=NOW, window_for=no_window, worker_id="w")
    assert three[0] in report.sent


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "dropped"])
def test_resend_refuses_other_states(engine, three, status):
    set_status(engine, three[0], status)

    with pytest.raises(OutboxError, match=f"is {status}; only in_doubt or failed"):
        resend(engine, "acme", three[0])


def test_drop_never_sends(engine, three, tmp_path):
    drop(engine, "acme", three[0])

    report = dispatch(engine, FileTransport(tmp_path), now=NOW, window_for=no_window, worker_id="w")

    assert three[0] not in report.sent
    assert rows(engine)[three[0]].status == "dropped"
    with pytest.raises(OutboxError, match="is dropped"):
        drop(engine, "acme", three[0])


def test_admin_actions_are_scoped_by_company(engine, three):
    set_status(engine, three[0], "failed")

    with pytest.raises(OutboxError, match="no outbox message"):
        resend(engine, "globex", three[0])
    with pytest.raises(OutboxError, match="no outbox message"):
        drop(engine, "acme", 999_999)
    assert rows(engine)[three[0]].status == "failed"


def test_dry_run_reports_backoff_and_expiring_leases(engine, three):
    set_status(engine, three[0], "queued", next_attempt_at=NOW + timedelta(minutes=30))
    claimed = datetime.now(UTC) - timedelta(hours=1)  # the lease is judged on the store's clock
    set_status(engine, three[1], "sending", claimed_by="gone", claimed_at=claimed)

    report = dispatch(
        engine, FileTransport("unused"), now=NOW, window_for=no_window, worker_id="w", dry_run=True
    )

    assert [(p.id, p.reason) for p in report.planned] == [(three[2], "due now"), (three[0], "retry backoff")]
    assert report.planned[1].send_at == NOW + timedelta(minutes=30)
    assert report.expired == [three[1]]
    assert rows(engine)[three[1]].status == "sending"
