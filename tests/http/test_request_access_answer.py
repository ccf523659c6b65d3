"""`POST /request-access` answers before the invitation is issued, so a customer's email is
answered no more slowly than a stranger's: the timing would tell what the body does not."""

from __future__ import annotations

import threading

import httpx
import pytest

from store import portal as store_portal
from sync.config import load_config
from sync.http.app import create_app
from tests.http.conftest import Served, serving_in_thread

EMAIL = "accounts@orsted.example"  # the primary contact of a Xero customer: eligible, not invited


def invitations_to(served: Served, email: str) -> int:
    return served.scalar(
        "SELECT COUNT(*) FROM outbox WHERE company_id = 'xero' AND kind = 'invitation' AND recipient LIKE :e",
        e=f"%{email}%",
    )


def test_the_answer_does_not_wait_for_the_invitation(served: Served, monkeypatch: pytest.MonkeyPatch):
    status = served.scalar(
        "SELECT portal_status FROM contacts WHERE company_id = 'xero' AND email = :e", e=EMAIL
    )
    assert status == "not_invited" and invitations_to(served, EMAIL) == 0
    issuing, release = threading.Event(), threading.Event()
    issue = store_portal.invite_on_request

    def held(*args, **kwargs):
        issuing.set()
        assert release.wait(10)
        return issue(*args, **kwargs)

    monkeypatch.setattr(store_portal, "invite_on_request", held)
    headers = {"Authorization": f"Bearer {served.keys['xero']}"}
    app = create_app(config=load_config(served.config))
    with serving_in_thread(app) as base, httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        answer = client.post("/v1/companies/xero/request-access", json={"email": EMAIL.upper()})
        stranger = client.post("/v1/companies/xero/request-access", json={"email": "who@else.example"})
        # answered, and the stranger's request too, while the invitation is still held
        assert issuing.wait(5) and not release.is_set()
        assert invitations_to(served, EMAIL) == 0
        release.set()
    assert (answer.status_code, answer.content) == (stranger.status_code, stranger.content)
    assert answer.status_code == 202
    assert invitations_to(served, EMAIL) == 1  # the server's stop waited for it
    assert (
        served.scalar("SELECT portal_status FROM contacts WHERE company_id = 'xero' AND email = :e", e=EMAIL)
        == "pending"
    )
