"""`POST /request-access` does the same work for a customer's email as for a stranger's, so
neither its answer nor its timing (nor the next request's on the same connection) tells
them apart: it records the request with its decision, and the worker's dispatch job issues
the invitation and sends it (a real SMTP server on loopback)."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, event, update

from store import access_requests
from store.fleet_tables import FleetJob
from store.jobs import REQUESTED, ensure_jobs
from sync.app import App
from sync.config import load_config
from sync.http.app import create_app
from sync.http.steady import STEADY
from sync.jobs import JobContext, answer_requests
from tests.http.conftest import Served, run_cli, serving_in_thread
from tests.mailer.smtp_server import LoopbackController, Recorder

EMAIL = "accounts@orsted.example"  # the primary contact of a Xero customer: eligible, not invited
STRANGER = "who@else.example"
INVITE_LINK = re.compile(r"https?://\S+/invite/[A-Za-z0-9_-]{43}")


def invitations_to(served: Served, email: str) -> int:
    return served.scalar(
        "SELECT COUNT(*) FROM outbox WHERE company_id = 'xero' AND kind = 'invitation' AND recipient LIKE :e",
        e=f"%{email}%",
    )


def portal_status(served: Served, email: str) -> str:
    return served.scalar(
        "SELECT portal_status FROM contacts WHERE company_id = 'xero' AND email = :e", e=email
    )


class Statements:
    """The SQL the server's threads run (the test's own reads excluded), without parameters."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.test_thread = threading.get_ident()

    def __call__(self, _connection, _cursor, statement: str, *_args) -> None:
        if threading.get_ident() != self.test_thread:
            self.seen.append(re.sub(r"\s+", " ", statement))

    def take(self) -> list[str]:
        taken, self.seen = self.seen, []
        return taken


def dispatch_due_tomorrow(served: Served) -> None:
    engine = served.engine()
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    ensure_jobs(engine, [REQUESTED], now=tomorrow)
    with engine.begin() as connection:
        connection.execute(update(FleetJob).where(FleetJob.name == REQUESTED).values(next_due_at=tomorrow))
    engine.dispose()


def test_a_customers_email_costs_the_same_statements_as_a_strangers_and_issues_nothing(served: Served):
    assert portal_status(served, EMAIL) == "not_invited" and invitations_to(served, EMAIL) == 0
    statements = Statements()
    headers = {"Authorization": f"Bearer {served.keys['xero']}"}
    app = create_app(config=load_config(served.config))
    event.listen(Engine, "before_cursor_execute", statements)
    try:
        with (
            serving_in_thread(app) as base,
            httpx.Client(base_url=base, headers=headers, timeout=10) as client,
        ):
            client.post("/v1/companies/xero/request-access", json={"email": "warm@up.example"})
            statements.take()  # the first request reads what the server keeps (keys, companies)
            # The dispatch not due: the stranger's request brings it forward and wakes the
            # workers, the customer's finds it due; their statements must not differ for that.
            dispatch_due_tomorrow(served)
            stranger = client.post("/v1/companies/xero/request-access", json={"email": STRANGER})
            after_stranger = client.get("/v1/companies/xero/accounts", params={"email": STRANGER})
            for_stranger = statements.take()
            customer = client.post("/v1/companies/xero/request-access", json={"email": EMAIL.upper()})
            after_customer = client.get("/v1/companies/xero/accounts", params={"email": STRANGER})
            for_customer = statements.take()
    finally:
        event.remove(Engine, "before_cursor_execute", statements)
    assert (customer.status_code, customer.content) == (stranger.status_code, stranger.content)
    assert customer.status_code == 202 and after_customer.json() == after_stranger.json()
    assert for_customer == for_stranger and any("access_requests" in s for s in for_customer)
    # nothing was issued in the server: the worker does it
    assert invitations_to(served, EMAIL) == 0 and portal_status(served, EMAIL) == "not_invited"


def waiting(served: Served) -> tuple[int, float, dict | None]:
    """What is still to issue for xero: in the store, in `/metrics`, in `arsync status --json`."""
    stored = served.scalar(
        "SELECT COUNT(*) FROM access_requests"
        " WHERE company_id = 'xero' AND invite_ref IS NOT NULL AND handled_at IS NULL"
    )
    with served.client() as client:
        metrics = client.get("/metrics").text
    [gauge] = [
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "arsync_requested_invitations" and sample.labels == {"company": "xero"}
    ]
    code, out, _ = run_cli(served.config, "status", "--json")
    assert code == 0
    [row] = [row for row in json.loads(out) if row["company"] == "xero"]
    return stored, gauge, row["requested_invitations"]


def test_the_workers_dispatch_issues_the_requested_invitation_and_mails_it(served: Served, tmp_path):
    with served.client("xero") as client:
        assert client.post("/v1/companies/xero/request-access", json={"email": EMAIL}).status_code == 202
    # waiting for a worker, and shown where an operator looks
    stored, gauge, shown = waiting(served)
    assert stored >= 1 and gauge == stored and shown["count"] == stored and shown["since"]
    code, text_out, _ = run_cli(served.config, "status")
    assert code == 0 and f"requested:   {stored} invitation(s)" in text_out and "not yet issued" in text_out
    recorder = Recorder()
    smtp = LoopbackController(recorder)
    smtp.start()
    config = served.config_mailing_to(smtp.port, tmp_path / "arsync.toml")
    app = App.open(load_config(config), register=False)
    try:
        job = JobContext(app, app.config, lambda: datetime.now(UTC), lambda: False, "test")
        answer_requests(job)
        answer_requests(job)  # a later run finds nothing left to issue
        assert access_requests.requested_invites(app.engine, "xero") == []
        assert waiting(served) == (0, 0, None)
    finally:
        app.close()
        smtp.stop()
    # one mail, whether this test's request alone or an earlier one's too was waiting: the
    # first issued answers the later requests (`store.access_requests.invite_on_request`)
    # (the dispatch also sends what other tests of this package left in the outbox)
    [mail] = [r for r in recorder.received if r.rcpt_tos == [EMAIL]]
    assert INVITE_LINK.search(mail.message.get_body(("plain",)).get_content())
    assert portal_status(served, EMAIL) == "pending"


def test_the_anonymous_routes_answer_a_fixed_time_after_they_began(served: Served):
    """A request right after a customer's waits a few milliseconds for the worker issuing and
    mailing its invitation (SQLite's one writer, the machine's cores): the answers a portal's
    visitor can cause leave `STEADY` after the request came in, refusals included, so such a
    wait shows nowhere."""
    timings = []
    with served.client("xero") as client, served.client(key="ak_000000000000_" + "x" * 43) as stranger:
        for caller, path, body in [
            (client, "/v1/companies/xero/request-access", {"email": STRANGER}),
            (client, "/v1/companies/xero/request-access", {"email": EMAIL}),
            (client, "/v1/companies/xero/invitations/accept", {"token": "x" * 43}),
            (client, "/v1/companies/xero/request-access", {"mail": EMAIL}),
            (stranger, "/v1/companies/xero/request-access", {"email": EMAIL}),
        ]:
            began = time.monotonic()
            answer = caller.post(path, json=body)
            timings.append((path.rsplit("/", 1)[1], answer.status_code, time.monotonic() - began))
    assert [(route, status) for route, status, _ in timings] == [
        ("request-access", 202),
        ("request-access", 202),
        ("accept", 400),
        ("request-access", 422),
        ("request-access", 401),
    ]
    assert all(took >= STEADY for *_, took in timings), timings
