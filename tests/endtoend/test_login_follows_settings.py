"""A company's settings changed since its last sync: login (the accounts an email reaches) and
accepting an invitation follow the configuration at once, as invitations do (SPEC sections 2
and 12), through `arsync serve`'s portal API over the config file as it says now, on both
stores. Settings that narrow eligibility apply before the next sync; nothing stored changes
for it, so switching back restores login without a sync."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from sync.http.app import create_app
from tests.endtoend.test_accept_sync_race import invite
from tests.endtoend.test_setting_changes import set_setting
from tests.http.conftest import serving_in_thread

REFUSED = (400, {"error": "invalid invitation token"})
CONTACTS = (
    "SELECT customer_ref, email, portal_status, eligible FROM contacts WHERE company_id = :c "
    "ORDER BY customer_ref, email"
)


def api_key(world, company: str) -> str:
    code, out, err = world.cli("portal", "api-key", "create", company)
    assert code == 0, err
    return out.splitlines()[-1]


@contextlib.contextmanager
def portal_api(world, key: str) -> Iterator[httpx.Client]:
    """A client of `arsync serve`'s application over the config file as it says now."""
    with (
        serving_in_thread(create_app(world.config)) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client,
    ):
        yield client


def reachable(client: httpx.Client, company: str, email: str) -> list[str]:
    answer = client.get(f"/v1/companies/{company}/accounts", params={"email": email})
    assert answer.status_code == 200, answer.text
    return [account["customer_ref"] for account in answer.json()["accounts"]]


def accept(client: httpx.Client, company: str, token: str) -> tuple[int, dict]:
    answer = client.post(f"/v1/companies/{company}/invitations/accept", json={"token": token})
    return answer.status_code, answer.json()


def accepted(world, company: str) -> list[tuple]:
    sql = "SELECT customer_ref FROM invitations WHERE company_id = :c AND accepted_at IS NOT NULL"
    return world.rows(sql + " ORDER BY customer_ref", c=company)


def test_a_plan_without_the_portal_ends_login_and_acceptance_before_the_next_sync(world):
    world.sync("qbo")
    key = api_key(world, "qbo")
    enabled = invite(world, "qbo", "1", "ap@cafe.example")
    pending = invite(world, "qbo", "5", "soon@inactive.example")
    with portal_api(world, key) as client:
        assert accept(client, "qbo", enabled)[0] == 200
        assert reachable(client, "qbo", "ap@cafe.example") == ["1"]
    stored = world.rows(CONTACTS, c="qbo")
    assert ("5", "soon@inactive.example", "pending") in [row[:3] for row in stored]

    set_setting(world, "qbo", "plan", "basic")  # no sync since: the store still says eligible
    with portal_api(world, key) as client:
        assert reachable(client, "qbo", "ap@cafe.example") == []
        assert accept(client, "qbo", pending) == REFUSED
    code, _, err = world.cli("portal", "accept", "qbo", "--", pending)
    assert code == 1 and "invalid invitation token" in err and "Traceback" not in err
    assert world.rows(CONTACTS, c="qbo") == stored  # still pending; reading wrote nothing
    assert accepted(world, "qbo") == [("1",)]

    set_setting(world, "qbo", "plan", "pro")  # back, still without a sync
    with portal_api(world, key) as client:
        assert reachable(client, "qbo", "ap@cafe.example") == ["1"]
        assert accept(client, "qbo", pending) == (
            200,
            {"customer_ref": "5", "email": "soon@inactive.example", "status": "enabled"},
        )
        assert reachable(client, "qbo", "soon@inactive.example") == ["5"]


def test_inactive_customers_no_longer_imported_lose_login_and_acceptance_before_the_next_sync(world):
    world.sync("qbo_all")
    key = api_key(world, "qbo_all")
    dormant = invite(world, "qbo_all", "2", "old@dormant.example")  # customer 2 is inactive
    active = invite(world, "qbo_all", "1", "ap@cafe.example")
    with portal_api(world, key) as client:
        assert accept(client, "qbo_all", active)[0] == 200
    stored = world.rows(CONTACTS, c="qbo_all")

    set_setting(world, "qbo_all", "import_inactive_customers", False)  # no sync since
    with portal_api(world, key) as client:
        assert accept(client, "qbo_all", dormant) == REFUSED
        assert reachable(client, "qbo_all", "ap@cafe.example") == ["1"]  # an active customer's stays
    assert world.rows(CONTACTS, c="qbo_all") == stored
    assert accepted(world, "qbo_all") == [("1",)]

    set_setting(world, "qbo_all", "import_inactive_customers", True)
    with portal_api(world, key) as client:
        assert accept(client, "qbo_all", dormant)[0] == 200
        assert reachable(client, "qbo_all", "old@dormant.example") == ["2"]
    stored = world.rows(CONTACTS, c="qbo_all")

    set_setting(world, "qbo_all", "import_inactive_customers", False)
    with portal_api(world, key) as client:
        assert reachable(client, "qbo_all", "old@dormant.example") == []
    assert world.rows(CONTACTS, c="qbo_all") == stored  # still enabled: turned back on, it logs in
    set_setting(world, "qbo_all", "import_inactive_customers", True)
    with portal_api(world, key) as client:
        assert reachable(client, "qbo_all", "old@dormant.example") == ["2"]


def test_an_invitation_whose_contact_the_last_sync_made_ineligible_is_refused(world):
    """After the sync, too: the contact stays `pending` (status is local state) but is no
    longer eligible, so its link opens nothing, as the mail dispatch already treats it."""
    world.sync("qbo")
    token = invite(world, "qbo", "5", "soon@inactive.example")
    set_setting(world, "qbo", "plan", "basic")
    world.sync("qbo")
    assert ("5", "soon@inactive.example", "pending", False) in [
        (ref, email, status, bool(eligible)) for ref, email, status, eligible in world.rows(CONTACTS, c="qbo")
    ]
    code, _, err = world.cli("portal", "accept", "qbo", "--", token)
    assert code == 1 and "invalid invitation token" in err
    assert accepted(world, "qbo") == []
