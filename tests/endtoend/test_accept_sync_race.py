"""An invitation accepted while a sync decides its contact's status again: the sync never
writes back the status it read before the acceptance (SPEC section 2: portal status is local
state, a sync never overwrites it), through `arsync sync` on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import store.accounts
import store.invitations
from connectors.simulators import mutations
from store.db import make_engine
from store.invitations import issue_invitation, load_accounts
from store.portal import accept_invitation
from sync.config import load_config
from sync.settings import company_policy
from tests.endtoend.test_setting_changes import portal, set_setting

SHARED = "shared@group.example"  # the primary email of customers 3 and 4


def invite(world, company_id: str, customer_ref: str, email: str) -> str:
    """Issue an invitation as `arsync invite` does; its token (which the mail carries)."""
    company = load_config(world.config).company(company_id)
    engine = make_engine(world.store_url)
    try:
        with engine.begin() as connection:
            [account] = load_accounts(connection, company_id, email=email, customer_ref=customer_ref)
            issued = issue_invitation(
                connection,
                company_id,
                account,
                policy=company_policy(company),
                portal_url=company.portal_url,
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()
    return issued.token


def accept_once_when(world, monkeypatch, token: str, contact: tuple[str, str], position: int = 0) -> list:
    """Accept `token` right after the sync read `contact` (at `position` in its customer's
    emails) to decide its status, once; the list the answer lands in."""
    policy = company_policy(load_config(world.config).company("qbo"))
    assess = store.accounts.assess_accounts
    accepted: list = []

    def accept_after_the_read(policy_, customers, contacts):
        contacts = list(contacts)
        if not accepted and any(c.key == contact and c.position == position for c in contacts):
            engine = make_engine(world.store_url)
            try:
                accepted.append(accept_invitation(engine, "qbo", token, policy=policy, now=datetime.now(UTC)))
            finally:
                engine.dispose()
        return assess(policy_, customers, contacts)

    monkeypatch.setattr(store.accounts, "assess_accounts", accept_after_the_read)
    return accepted


def test_an_invitation_accepted_while_a_sync_reassesses_its_email_stays_accepted(world, monkeypatch):
    world.sync("qbo")  # a multi-account portal: both customers of the shared email may be invited
    invite(world, "qbo", "3", SHARED)
    token = invite(world, "qbo", "4", SHARED)
    shared = [(ref, status) for ref, email, status, _ in portal(world, "qbo")[2] if email == SHARED]
    assert shared == [("3", "pending"), ("4", "pending")]

    # one login per customer from now on: the next sync decides who keeps the shared email
    set_setting(world, "qbo", "multi_account_portal", False)
    accepted = accept_once_when(world, monkeypatch, token, ("4", SHARED))  # customer 4 accepts
    assert world.sync("qbo")["qbo"]["status"] == "ok"
    assert accepted == [None]  # customer 4 was told its portal access is enabled

    # the one who accepted keeps the email (an enabled contact never loses it to a pending one)
    accounts = portal(world, "qbo")[2]
    shared = [(ref, status, bool(ok)) for ref, email, status, ok in accounts if email == SHARED]
    assert shared == [("3", "conflict", False), ("4", "enabled", True)]
    code, out, _ = world.cli("portal", "conflicts", "qbo")
    assert code == 0 and "customer 3: conflict" in out


# SQLite is not raced here: a page's transaction begins with the lease renewal, a write, so
# the store's one writer is the sync's until the page commits (the acceptance would wait).
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_an_invitation_accepted_while_a_full_pull_ends_stays_accepted(world, monkeypatch):
    world.sync("qbo")
    token = invite(world, "qbo", "1", "ap@cafe.example")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    # the books list another address first: ap@ is no longer the primary contact
    mutations.set_emails(world.qbo_books, "1", ["new@cafe.example", "ap@cafe.example"], at)
    # a full pull decides the contacts once, on its last page (not the customers' page)
    accepted = accept_once_when(world, monkeypatch, token, ("1", "ap@cafe.example"), position=1)
    assert world.sync("--full", "qbo")["qbo"]["status"] == "ok"
    assert accepted == [None]
    cafe = [a for a in portal(world, "qbo")[2] if a[0] == "1"]
    assert cafe == [
        ("1", "ap@cafe.example", "enabled", False),  # accepted; no longer the primary contact
        ("1", "new@cafe.example", "not_invited", True),
    ]


def test_an_acceptance_racing_a_sync_that_hands_the_email_to_another_customer_is_refused(world, monkeypatch):
    """The other way round: the acceptance read its contact `pending`, a sync then gave the
    shared email to the other customer (`conflict` for this one) and committed; the
    acceptance wrote `enabled` over it, so one email could hold two logins. It is now
    refused as any token of a contact no longer pending is, and nothing changes."""
    world.sync("qbo")
    invite(world, "qbo", "3", SHARED)
    token = invite(world, "qbo", "4", SHARED)
    set_setting(world, "qbo", "multi_account_portal", False)
    check = store.invitations.check_acceptance
    synced: list = []

    def a_sync_between_the_read_and_the_write(*args, **kwargs):
        if not synced:
            synced.append(world.sync("qbo")["qbo"]["status"])
        return check(*args, **kwargs)

    monkeypatch.setattr(store.invitations, "check_acceptance", a_sync_between_the_read_and_the_write)
    policy = company_policy(load_config(world.config).company("qbo"))
    engine = make_engine(world.store_url)
    try:
        answer = accept_invitation(engine, "qbo", token, policy=policy, now=datetime.now(UTC))
    finally:
        engine.dispose()
    assert synced == ["ok"]
    assert answer == "invalid invitation token"
    shared = [(ref, status) for ref, email, status, _ in portal(world, "qbo")[2] if email == SHARED]
    assert shared == [("3", "pending"), ("4", "conflict")]  # as the sync decided
    assert world.rows("SELECT COUNT(*) FROM invitations WHERE accepted_at IS NOT NULL") == [(0,)]
