"""A company's settings changed between syncs: the portal follows the new settings at the next
sync, also for customers and contacts the source does not send again (SPEC section 2's
active-customer filtering and portal eligibility), through `arsync sync` on both stores."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
from sqlalchemy import text

from store.db import make_engine
from sync.config import load_config
from sync.http.app import create_app
from sync.invites import issue_requested
from tests.endtoend.test_sync_rules import ACCOUNTS, PORTAL_CUSTOMERS, PORTAL_INVOICES
from tests.http.conftest import serving_in_thread


def set_setting(world, company: str, key: str, value) -> None:
    """Set `key` in the company's `[[companies]]` table of the world's config file."""
    text = world.config.read_text()
    start = text.index(f'id = "{company}"')
    end = text.index("[companies.connection]", start)
    block = re.sub(rf"^{key} = .*\n", "", text[start:end], flags=re.M)
    block = block.replace("\n", f"\n{key} = {json.dumps(value)}\n", 1)
    world.config.write_text(text[:start] + block + text[end:])


def portal(world, company: str) -> tuple[list[str], list[str], list[tuple]]:
    customers = [ref for ref, _ in world.rows(PORTAL_CUSTOMERS, c=company)]
    invoices = [ref for (ref,) in world.rows(PORTAL_INVOICES, c=company)]
    accounts = [(ref, email, status, bool(ok)) for ref, email, status, ok in world.rows(ACCOUNTS, c=company)]
    return customers, invoices, accounts


def test_turning_inactive_imports_off_hides_the_stored_inactive_customer_at_the_next_sync(world):
    assert world.sync("qbo_all")["qbo_all"]["status"] == "ok"
    customers, invoices, accounts = portal(world, "qbo_all")
    assert "2" in customers and "106" in invoices
    assert ("2", "old@dormant.example", "not_invited", True) in accounts

    set_setting(world, "qbo_all", "import_inactive_customers", False)
    summary = world.sync("qbo_all")["qbo_all"]  # an incremental sync: customer 2 is not sent again
    assert summary["status"] == "ok" and summary["full"] is False and summary["customers"] == 0
    customers, invoices, accounts = portal(world, "qbo_all")
    assert "2" not in customers and "106" not in invoices
    assert [a for a in accounts if a[0] == "2"] == []
    # it stays stored, marked inactive, and is neither invited nor scored
    assert world.rows(
        "SELECT active, portal_visible FROM customers WHERE company_id = 'qbo_all' AND ref = '2'"
    ) in (
        [(0, 0)],
        [(False, False)],
    )
    assert world.rows(
        "SELECT eligible FROM contacts WHERE company_id = 'qbo_all' AND customer_ref = '2'"
    ) in (
        [(0,)],
        [(False,)],
    )
    code, _, err = world.cli("invite", "qbo_all", "--customer", "2")
    assert code == 2 and "customer '2' of company 'qbo_all' is not in the portal (inactive" in err
    assert world.rows("SELECT COUNT(*) FROM outbox WHERE company_id = 'qbo_all'") == [(0,)]
    code, out, _ = world.cli("customer", "health", "qbo_all", "--json")
    assert code == 0 and "2" not in [json.loads(line)["customer_ref"] for line in out.splitlines()]
    code, out, _ = world.cli("invoice", "mark-sent", "qbo_all", "106")
    assert code == 0 and "hidden in the portal (inactive customer)" in out

    # the same settings again: nothing is decided anew
    assert world.sync("qbo_all")["qbo_all"]["full"] is False
    assert portal(world, "qbo_all")[0] == customers


def test_turning_inactive_imports_on_pulls_the_customers_never_imported(world):
    assert world.sync("qbo")["qbo"]["status"] == "ok"
    assert world.rows("SELECT COUNT(*) FROM customers WHERE company_id = 'qbo' AND ref = '2'") == [(0,)]

    set_setting(world, "qbo", "import_inactive_customers", True)
    summary = world.sync("qbo")["qbo"]
    assert summary["status"] == "ok" and summary["full"] is True  # unchanged records must be read
    customers, invoices, accounts = portal(world, "qbo")
    assert "2" in customers and "106" in invoices
    assert ("2", "old@dormant.example", "not_invited", True) in accounts
    code, out, _ = world.cli("history", "qbo", "--json")
    runs = json.loads(out)
    assert code == 0 and [run["full"] for run in runs] == [True, True]  # newest first
    for run in runs:  # ISO 8601 as `status --json` prints times, not Python's str()
        assert "T" in run["started_at"] and datetime.fromisoformat(run["finished_at"]).tzinfo is not None
    assert world.sync("qbo")["qbo"]["full"] is False  # once


def test_a_changed_portal_mode_reassesses_shared_emails_at_the_next_sync(world):
    world.sync("qbo_single")
    shared = [(r, s, ok) for r, e, s, ok in portal(world, "qbo_single")[2] if e == "shared@group.example"]
    assert shared == [("3", "not_invited", True), ("4", "conflict", False)]

    set_setting(world, "qbo_single", "multi_account_portal", True)
    summary = world.sync("qbo_single")["qbo_single"]
    assert summary["status"] == "ok" and summary["full"] is False
    shared = [(r, s, ok) for r, e, s, ok in portal(world, "qbo_single")[2] if e == "shared@group.example"]
    assert shared == [("3", "not_invited", True), ("4", "not_invited", True)]
    code, out, _ = world.cli("portal", "conflicts", "qbo_single")
    assert code == 0 and "shared@group.example" not in out


def test_a_store_from_before_settings_were_kept_decides_once_and_reads_inactive_customers_again(world):
    world.sync("qbo", "qbo_all")
    engine = make_engine(world.store_url)
    with engine.begin() as connection:  # as migration 0010 leaves a store synced by the release before
        connection.execute(text("UPDATE companies SET rules = NULL"))
    engine.dispose()
    summaries = world.sync("qbo", "qbo_all")
    # with inactive imports on, an earlier setting may have kept some out: read everything once
    assert {cid: s["full"] for cid, s in summaries.items()} == {"qbo": False, "qbo_all": True}
    assert "2" in portal(world, "qbo_all")[0] and "2" not in portal(world, "qbo")[0]
    assert {cid: s["full"] for cid, s in world.sync("qbo", "qbo_all").items()} == {
        "qbo": False,
        "qbo_all": False,
    }


def invitations(world, company: str) -> list[tuple[str, str]]:
    sql = "SELECT customer_ref, email FROM invitations WHERE company_id = :c ORDER BY customer_ref, email"
    return world.rows(sql, c=company)


def test_a_plan_without_the_portal_stops_invitations_before_the_next_sync(world):
    world.sync("qbo")
    assert ("1", "ap@cafe.example", "not_invited", True) in portal(world, "qbo")[2]

    set_setting(world, "qbo", "plan", "basic")  # no sync since: the store still says eligible
    for how in (["--customer", "1"], ["--customer", "1", "--email", "ap@cafe.example"], ["--all-eligible"]):
        code, _, err = world.cli("invite", "qbo", *how)
        assert code == 2, (how, err)
        assert "companies[0].plan: 'basic' does not include the portal" in err and "Traceback" not in err
    # the portal's call answers as for any email, and invites nobody
    matched = world.cli("portal", "request-access", "qbo", "ap@cafe.example")
    unknown = world.cli("portal", "request-access", "qbo", "nobody@nowhere.example")
    assert matched[:2] == unknown[:2] and matched[0] == 0
    assert invitations(world, "qbo") == []
    assert world.rows("SELECT COUNT(*) FROM outbox WHERE company_id = 'qbo'") == [(0,)]


def test_inactive_customers_no_longer_imported_are_not_invited_before_the_next_sync(world):
    world.sync("qbo_all")
    assert ("2", "old@dormant.example", "not_invited", True) in portal(world, "qbo_all")[2]

    set_setting(world, "qbo_all", "import_inactive_customers", False)  # no sync since
    code, _, err = world.cli("invite", "qbo_all", "--customer", "2")
    # as the next sync will leave it
    assert code == 2 and "customer '2' of company 'qbo_all' is not in the portal (inactive" in err
    matched = world.cli("portal", "request-access", "qbo_all", "old@dormant.example")
    unknown = world.cli("portal", "request-access", "qbo_all", "nobody@nowhere.example")
    assert matched[:2] == unknown[:2] and matched[0] == 0
    assert invitations(world, "qbo_all") == []
    code, _, err = world.cli("invite", "qbo_all", "--all-eligible")
    assert code == 0, err
    invited = invitations(world, "qbo_all")
    assert ("1", "ap@cafe.example") in invited and "2" not in [ref for ref, _ in invited]


def request_access_over_http(world, key: str, *emails: str) -> list[httpx.Response]:
    """POST each email to `arsync serve`'s request-access, as the config file says now."""
    with (
        serving_in_thread(create_app(world.config)) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client,
    ):
        return [client.post("/v1/companies/qbo_all/request-access", json={"email": e}) for e in emails]


def test_the_portal_api_and_the_workers_requested_invitations_follow_the_current_settings(world):
    world.sync("qbo_all")
    code, out, err = world.cli("portal", "api-key", "create", "qbo_all")
    assert code == 0, err
    key = out.splitlines()[-1]
    [early] = request_access_over_http(world, key, "old@dormant.example")  # still eligible then
    assert early.status_code == 202
    decided = "SELECT invite_ref FROM access_requests WHERE company_id = 'qbo_all' ORDER BY id"
    assert world.rows(decided) == [("2",)]  # for a worker to issue

    set_setting(world, "qbo_all", "import_inactive_customers", False)  # no sync since
    matched, unknown = request_access_over_http(world, key, "old@dormant.example", "nobody@nowhere.example")
    assert matched.status_code == unknown.status_code == 202 and matched.json() == unknown.json()
    assert world.rows(decided) == [("2",), (None,), (None,)]
    # the workers' `requested` job, with the configuration as it is now, issues none of them
    config = load_config(world.config)
    engine = make_engine(world.store_url)
    try:
        issued = issue_requested(engine, config, config.company("qbo_all"), now=datetime.now(UTC))
    finally:
        engine.dispose()
    assert issued == 0 and invitations(world, "qbo_all") == []
    assert world.rows("SELECT COUNT(*) FROM outbox WHERE company_id = 'qbo_all'") == [(0,)]
