"""Portal calls racing each other through `arsync serve`: one invitation token enables its
contact once, and the per-email limit on access requests holds (SPEC section 2), however
many requests arrive at the same moment."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from threading import Barrier

from store.invitations import issue_invitation, load_accounts
from sync.config import load_config
from sync.invites import issue_requested
from sync.settings import company_policy
from tests.http.conftest import Served

RACERS = 24


def race(served: Served, company: str, path: str, body: dict) -> list:
    """`RACERS` POSTs of `body`, each on its own connection, let go together."""
    start = Barrier(RACERS)

    def post(_):
        with served.client(company) as client:
            start.wait()
            return client.post(path, json=body)

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(post, range(RACERS)))


def test_one_token_accepted_by_many_requests_at_once_enables_its_contact_once(served: Served):
    company = load_config(served.config).company("qbo_all")
    engine = served.engine()
    with engine.begin() as connection:
        [account] = load_accounts(connection, "qbo_all", email="old@dormant.example")
        issued = issue_invitation(
            connection,
            "qbo_all",
            account,
            policy=company_policy(company),
            portal_url=company.portal_url,
            now=datetime.now(UTC),
        )
    engine.dispose()
    answers = race(served, "qbo_all", "/v1/companies/qbo_all/invitations/accept", {"token": issued.token})
    assert sorted(a.status_code for a in answers) == [200] + [400] * (RACERS - 1)
    assert {a.json()["error"] for a in answers if a.status_code == 400} == {"invalid invitation token"}
    accepted = "SELECT COUNT(*) FROM invitations WHERE company_id = 'qbo_all' AND accepted_at IS NOT NULL"
    assert served.scalar(accepted) == 1


def test_the_per_email_limit_holds_for_requests_arriving_together(served: Served):
    where = "WHERE company_id = 'qbo' AND email = 'soon@inactive.example'"
    assert served.scalar(f"SELECT COUNT(*) FROM access_requests {where}") == 0  # none before
    answers = race(served, "qbo", "/v1/companies/qbo/request-access", {"email": "soon@inactive.example"})
    assert {a.status_code for a in answers} == {202}
    # the limit of three requests an hour, as one after another; every request counts towards it
    assert served.scalar(f"SELECT COUNT(*) FROM access_requests {where} AND invite_ref IS NOT NULL") == 3
    config = load_config(served.config)
    engine = served.engine()
    try:  # the worker's dispatch issues one: issued after all three requests, it answers them all
        assert issue_requested(engine, config, config.company("qbo"), now=datetime.now(UTC)) == 1
    finally:
        engine.dispose()
    assert served.scalar(f"SELECT COUNT(*) FROM invitations {where}") == 1
    assert served.scalar(f"SELECT COUNT(*) FROM access_requests {where} AND handled_at IS NULL") == 0
    assert served.scalar(f"SELECT COUNT(*) FROM access_requests {where}") == RACERS
