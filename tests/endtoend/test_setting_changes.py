"""A company's settings changed between syncs: the portal follows the new settings at the next
sync, also for customers and contacts the source does not send again (SPEC section 2's
active-customer filtering and portal eligibility), through `arsync sync` on both stores."""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import text

from store.db import make_engine
from tests.endtoend.test_sync_rules import ACCOUNTS, PORTAL_CUSTOMERS, PORTAL_INVOICES


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
    assert code == 2 and "no contacts for customer '2'" in err  # none the portal may invite
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
