"""Invitations taken back before they are sent (beside the reminders of `mailer.withdraw`).

An invitation waiting to go is dropped just before it would be claimed when it can no longer be accepted
(`REVOKED`): an admin disabled its contact, the contact left the books or the portal
(customer inactive, email removed, plan without portal), or it was accepted (perhaps through
a sibling account) or superseded meanwhile. Its link could only fail, and it would reach an
address the admin or the books took out of the portal. This holds for automatic invitations
held for the window and for manual or requested ones queued again after a failed attempt (the
server down): those go whatever the window, so they are checked whenever a run begins. An
automatic invitation of a company whose `auto_invite` was turned off since it was queued is
dropped too (`UNWANTED`): the company no longer wants its contacts invited unasked.
Its invitation is superseded, and its contact, still `pending`, is not invited after all
(`_uninvite`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select, true, update

from mailer.claim import due
from mailer.outbox import OUTBOX
from portal_rules.types import PortalStatus
from store.tables import Contact, Invitation

INVITATIONS, CONTACTS = Invitation.__table__, Contact.__table__
INVITATION_KEY = "invitation:"  # an invitation mail's dedupe key: this, then its token's hash
REVOKED = (
    "withdrawn before sending: the invitation can no longer be accepted "
    "(contact disabled or out of the portal, or invitation accepted or superseded)"
)
UNWANTED = "withdrawn before sending: automatic invitations are off for the company (auto_invite = false)"

AutoInvites = Callable[[str], bool]
"""Whether a company sends automatic invitations (`auto_invite`) now."""


def stale_invitations(
    connection: Connection,
    now: datetime | None,
    companies: Collection[str] | None,
    auto_invites: AutoInvites | None,
) -> tuple[list[int], list[int]]:
    """The queued invitations about to be claimed (manual ones of any company, automatic ones
    of `companies`; None: any) that can no longer be accepted, and the automatic ones, still
    acceptable, of a company whose `auto_invite` is off now."""
    revoked, unwanted = [], []
    for row in connection.execute(_queued_invitations(now, companies)):
        if row.dead:
            revoked.append(row.id)
        elif row.automatic and auto_invites is not None and not auto_invites(row.company_id):
            unwanted.append(row.id)
    return sorted(revoked), sorted(unwanted)


def drop_invitations(connection: Connection, ids: list[int], reason: str, now: datetime) -> list[int]:
    """Drop those of `ids` still queued: invitations not to send, for `reason`."""
    c = OUTBOX.c
    dropped = sorted(
        connection.execute(
            update(OUTBOX)
            .where(c.id.in_(ids), c.status == "queued", c.kind == "invitation")
            .values(status="dropped", last_error=reason)
            .returning(c.id)
        ).scalars()
    )
    if dropped:
        _uninvite(connection, dropped, now)
    return dropped


def _uninvite(connection: Connection, outbox_ids: list[int], now: datetime) -> None:
    """The contacts these dropped mails would have invited were not invited after all.

    Each mail's invitation, if still open, is superseded at `now` (its link never left), and its
    contact, if still `pending` with no other open invitation, goes back to `not_invited`
    (`portal_rules.status`: withdraw). Left `pending`, it showed as invited though no mail
    went, and automatic invitations, which only invite `not_invited` contacts, never
    reached it again (after `auto_invite` was turned back on, or its customer active again).
    A contact disabled, enabled or in conflict meanwhile keeps its status.
    """
    c, v, k = OUTBOX.c, INVITATIONS.c, CONTACTS.c
    open_ = (v.accepted_at.is_(None), v.superseded_at.is_(None))
    of_contact = _of_contact()
    carried = (
        select(v.id, k.id.label("contact"))
        .select_from(OUTBOX.join(INVITATIONS, carries()).outerjoin(CONTACTS, of_contact))
        .where(c.id.in_(outbox_ids), *open_)
    )
    rows = connection.execute(carried).all()  # `outbox_ids` is one chunk: bounded IN lists
    if not rows:
        return
    superseded = [row.id for row in rows]
    connection.execute(update(INVITATIONS).where(v.id.in_(superseded)).values(superseded_at=now))
    contacts = [row.contact for row in rows if row.contact is not None]
    if contacts:
        connection.execute(
            update(CONTACTS)
            .where(
                k.id.in_(contacts),
                k.portal_status == PortalStatus.PENDING,
                ~select(v.id).where(of_contact, *open_).exists(),
            )
            .values(portal_status=PortalStatus.NOT_INVITED)
        )


def carries() -> ColumnElement[bool]:
    """An outbox mail and the invitation it carries: its key is "invitation:" + the token's
    hash, looked up by the hash's unique index."""
    c, v = OUTBOX.c, INVITATIONS.c
    hashed = func.substr(c.dedupe_key, len(INVITATION_KEY) + 1)
    return (v.token_hash == hashed) & (v.company_id == c.company_id)


def _of_contact() -> ColumnElement[bool]:
    """An invitation and the contact it invites."""
    v, k = INVITATIONS.c, CONTACTS.c
    return (k.company_id == v.company_id) & (k.customer_ref == v.customer_ref) & (k.email == v.email)


def _queued_invitations(now: datetime | None, companies: Collection[str] | None) -> Select:
    """The invitations about to be claimed (due at `now`; None: any queued): manual ones of any
    company (they ignore windows), automatic ones of `companies` (None: any); each with its
    company, whether it is automatic, and `dead`: its invitation can no longer be accepted
    (accepted or superseded, or its contact no longer `pending` and eligible: disabled,
    enabled meanwhile, out of the books or the portal). The mail's dedupe key names the
    invitation it carries; one naming no stored invitation is left alone."""
    c, v, k = OUTBOX.c, INVITATIONS.c, CONTACTS.c
    carried = OUTBOX.join(INVITATIONS, carries()).outerjoin(CONTACTS, _of_contact())
    contact_open = and_(k.id.is_not(None), k.portal_status == "pending", k.eligible.is_(True))
    dead = or_(v.accepted_at.is_not(None), v.superseded_at.is_not(None), ~contact_open)
    in_scope = or_(~c.automatic, c.company_id.in_(list(companies))) if companies is not None else true()
    return (
        select(c.id, c.company_id, c.automatic, dead.label("dead"))
        .select_from(carried)
        .where(
            due(now) if now is not None else c.status == "queued",
            c.kind == "invitation",
            c.dedupe_key.startswith(INVITATION_KEY, autoescape=True),
            in_scope,
        )
    )
