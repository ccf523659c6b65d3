"""Unknown references on the command line are bad usage: exit 2 naming the argument (SPEC 6)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "args, argument, named",
    [
        (("invoice", "mark-sent", "acme", "99999"), "INVOICE_REF", "no invoice '99999'"),
        (("invoice", "mark-unsent", "acme", "99999"), "INVOICE_REF", "no invoice '99999'"),
        (("customer", "pause-reminders", "acme", "c9"), "REF", "no customer 'c9'"),
        (("customer", "resume-reminders", "acme", "c9"), "REF", "no customer 'c9'"),
        (
            ("portal", "enable", "acme", "--customer", "c9", "--email", "Ap@X.example"),
            "'--customer' / '--email'",
            "no contact 'ap@x.example' for customer 'c9'",
        ),
        (("invite", "acme", "--customer", "c9"), "'--customer'", "company 'acme' has no customer 'c9'"),
        (
            ("invite", "acme", "--customer", "c9", "--email", "ap@x.example"),
            "'--customer'",
            "company 'acme' has no customer 'c9'",
        ),
        (("mail", "resend", "acme", "4242"), "OUTBOX_ID", "no outbox message 4242"),
        (("mail", "drop", "acme", "4242"), "OUTBOX_ID", "no outbox message 4242"),
        (("status", "--json", "extra"), "", "unexpected extra argument"),
        (("history", "nosuch"), "COMPANY", "no company 'nosuch'"),
        (("mail", "drop", "acme", str(2**64)), "'OUTBOX_ID'", "is not in the range"),
        (("portal", "api-key", "revoke", "acme", "nokey"), "KEY_ID", "no live API key 'nokey'"),
    ],
    ids=lambda value: " ".join(value[:3]) if isinstance(value, tuple) else "",
)
def test_unknown_reference_exits_2_naming_the_argument(cli, args, argument, named):
    code, err = cli(*args)
    assert code == 2
    assert f"Invalid value for {argument}:" in err or not argument
    assert named in err and "Traceback" not in err
