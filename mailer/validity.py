"""An invitation's link is valid for its days from when its mail leaves, not from when it was issued.

An automatic invitation issued outside the delivery window waits for the next opening (Friday
evening's goes out on Monday), and a manual one waits out a mail server that is down. Its
days were counted from the issue: with `invitation_ttl_days = 1` Friday's link had expired
before Monday's mail carried it, so the customer got a link that could only fail, while the
email said "The link expires in 1 day" (and the contact, `pending`, was never invited again
automatically). So when the dispatcher claims an invitation's mail, in the claim's
transaction, the invitation's `expires_at` moves to the dispatcher's `now` plus the days it was
issued with, never earlier than it was. Nobody can hold the link before its mail leaves: only
the token's hash is stored, and the token travels in that mail.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from mailer.outbox import OUTBOX
from mailer.uninvite import INVITATIONS, carries


def count_from(connection: Connection, outbox_ids: Collection[int], now: datetime) -> int:
    """Restart the days of the open invitations these invitation mails carry at `now`; how many
    moved. The caller's transaction claims the mails."""
    if not outbox_ids:
        return 0
    c, v = OUTBOX.c, INVITATIONS.c
    carried = (
        select(v.id, v.created_at, v.expires_at)
        .select_from(OUTBOX.join(INVITATIONS, carries()))
        .where(c.id.in_(list(outbox_ids)), v.accepted_at.is_(None), v.superseded_at.is_(None))
    )
    moved = [
        {"b_id": row.id, "b_expires": now + (row.expires_at - row.created_at)}
        for row in connection.execute(carried)
        if now + (row.expires_at - row.created_at) > row.expires_at
    ]
    if moved:
        restarted = update(INVITATIONS).where(v.id == bindparam("b_id"))
        connection.execute(restarted.values(expires_at=bindparam("b_expires")), moved)
    return len(moved)
