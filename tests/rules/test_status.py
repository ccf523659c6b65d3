from __future__ import annotations

import pytest

from portal_rules.status import InvalidTransition, PortalEvent, next_status
from portal_rules.types import PortalStatus

S, E = PortalStatus, PortalEvent

# Every (status, event) pair: the new status, or the start of the refusal message.
TABLE = [
    (S.NOT_INVITED, E.SEND, S.PENDING),
    (S.NOT_INVITED, E.ACCEPT, "cannot accept"),
    (S.NOT_INVITED, E.DISABLE, S.DISABLED),
    (S.NOT_INVITED, E.ENABLE, S.NOT_INVITED),
    (S.PENDING, E.SEND, S.PENDING),
    (S.PENDING, E.ACCEPT, S.ENABLED),
    (S.PENDING, E.DISABLE, S.DISABLED),
    (S.PENDING, E.ENABLE, S.PENDING),
    (S.ENABLED, E.SEND, "the contact has already accepted"),
    (S.ENABLED, E.ACCEPT, "cannot accept"),
    (S.ENABLED, E.DISABLE, S.DISABLED),
    (S.ENABLED, E.ENABLE, S.ENABLED),
    (S.DISABLED, E.SEND, "the contact's portal access is disabled"),
    (S.DISABLED, E.ACCEPT, "cannot accept"),
    (S.DISABLED, E.DISABLE, S.DISABLED),
    (S.DISABLED, E.ENABLE, S.NOT_INVITED),
    (S.CONFLICT, E.SEND, "the email has portal access through another customer"),
    (S.CONFLICT, E.ACCEPT, "cannot accept"),
    (S.CONFLICT, E.DISABLE, S.DISABLED),
    (S.CONFLICT, E.ENABLE, S.CONFLICT),
    (S.NOT_INVITED, E.WITHDRAW, S.NOT_INVITED),
    (S.PENDING, E.WITHDRAW, S.NOT_INVITED),
    (S.ENABLED, E.WITHDRAW, S.ENABLED),
    (S.DISABLED, E.WITHDRAW, S.DISABLED),
    (S.CONFLICT, E.WITHDRAW, S.CONFLICT),
]


@pytest.mark.parametrize(
    ("status", "event", "outcome"),
    TABLE,
    ids=[f"{status}-{event}" for status, event, _ in TABLE],
)
def test_next_status(status: PortalStatus, event: PortalEvent, outcome) -> None:
    if isinstance(outcome, PortalStatus):
        assert next_status(status, event) is outcome
    else:
        with pytest.raises(InvalidTransition, match=outcome):
            next_status(status, event)


def test_table_covers_every_pair() -> None:
    assert {(status, event) for status, event, _ in TABLE} == {(s, e) for s in S for e in E}


def test_plain_strings_are_accepted() -> None:
    assert next_status("not_invited", "send") is S.PENDING
