"""The portal status machine of one contact, as a transition table.

    not_invited --send--> pending --accept--> enabled
    any --disable--> disabled --enable--> not_invited

Conflicts are not events here: `conflicts.resolve_conflicts` derives them from the set of
contacts sharing an email. Status is local state: a sync never overwrites it.
"""

from __future__ import annotations

from enum import StrEnum

from portal_rules.types import PortalStatus


class PortalEvent(StrEnum):
    SEND = "send"  # an invitation was sent (manual, automatic or request access)
    ACCEPT = "accept"  # a valid invitation token was accepted
    DISABLE = "disable"  # `arsync portal disable`
    ENABLE = "enable"  # `arsync portal enable`
    WITHDRAW = "withdraw"  # its invitation taken back before it was sent (`mailer.withdraw`)


class InvalidTransition(ValueError):
    """The event makes no sense in the contact's status; the message says why."""


_S, _E = PortalStatus, PortalEvent

# (status, event) -> new status. A missing pair is an invalid transition.
TRANSITIONS: dict[tuple[PortalStatus, PortalEvent], PortalStatus] = {
    (_S.NOT_INVITED, _E.SEND): _S.PENDING,
    (_S.NOT_INVITED, _E.DISABLE): _S.DISABLED,
    (_S.NOT_INVITED, _E.ENABLE): _S.NOT_INVITED,
    (_S.PENDING, _E.SEND): _S.PENDING,  # a resend supersedes the earlier invitations
    (_S.PENDING, _E.ACCEPT): _S.ENABLED,
    (_S.PENDING, _E.DISABLE): _S.DISABLED,
    (_S.PENDING, _E.ENABLE): _S.PENDING,
    (_S.PENDING, _E.WITHDRAW): _S.NOT_INVITED,  # no mail left: not invited after all
    (_S.ENABLED, _E.DISABLE): _S.DISABLED,
    (_S.ENABLED, _E.ENABLE): _S.ENABLED,
    (_S.DISABLED, _E.DISABLE): _S.DISABLED,
    (_S.DISABLED, _E.ENABLE): _S.NOT_INVITED,  # enabled again, to be invited again
    (_S.CONFLICT, _E.DISABLE): _S.DISABLED,
    # Enabling records the admin's wish; which contact of a shared email keeps access is
    # then decided by `resolve_conflicts` (the others must be disabled to hand it over).
    (_S.CONFLICT, _E.ENABLE): _S.CONFLICT,
    # An invitation taken back unsent changes only a contact still waiting on it.
    (_S.NOT_INVITED, _E.WITHDRAW): _S.NOT_INVITED,
    (_S.ENABLED, _E.WITHDRAW): _S.ENABLED,
    (_S.DISABLED, _E.WITHDRAW): _S.DISABLED,
    (_S.CONFLICT, _E.WITHDRAW): _S.CONFLICT,
}

_WHY = {
    _E.SEND: {
        _S.ENABLED: "the contact has already accepted an invitation",
        _S.DISABLED: "the contact's portal access is disabled",
        _S.CONFLICT: "the email has portal access through another customer",
    },
}


def next_status(status: PortalStatus | str, event: PortalEvent | str) -> PortalStatus:
    """The status after `event`, or `InvalidTransition` saying why it cannot happen."""
    status, event = PortalStatus(status), PortalEvent(event)
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        why = _WHY.get(event, {}).get(status, f"cannot {event} a contact that is {status}")
        raise InvalidTransition(why) from None
