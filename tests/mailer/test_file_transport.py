from __future__ import annotations

import asyncio
from email import message_from_bytes, policy

from mailer.render import render_invitation, render_reminder
from mailer.results import Outcome
from mailer.transports import FileTransport, eml_name
from tests.mailer.conftest import NOW, outgoing


def test_writes_parseable_eml_files(tmp_path, sender, invitation, reminder):
    messages = [
        render_invitation(sender, invitation, key="i1", now=NOW),
        render_reminder(sender, reminder, key="r1", now=NOW),
    ]

    results = asyncio.run(FileTransport(tmp_path / "outbox").send_many(outgoing(messages)))

    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.DELIVERED]
    files = sorted((tmp_path / "outbox").iterdir())
    assert [f.name for f in files] == sorted(eml_name(m["Message-ID"]) for m in messages)
    for message in messages:
        path = tmp_path / "outbox" / eml_name(message["Message-ID"])
        parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert parsed["Message-ID"] == message["Message-ID"]
        assert parsed["Subject"] == message["Subject"]
        assert parsed.get_body(("html",)) is not None


def test_writing_the_same_message_twice_keeps_one_file(tmp_path, sender, invitation):
    message = render_invitation(sender, invitation, key="i1", now=NOW)
    transport = FileTransport(tmp_path)

    asyncio.run(transport.send_many(outgoing([message])))
    first = (tmp_path / eml_name(message["Message-ID"])).read_bytes()
    asyncio.run(transport.send_many(outgoing([message])))

    assert [p.name for p in tmp_path.iterdir()] == [eml_name(message["Message-ID"])]
    assert (tmp_path / eml_name(message["Message-ID"])).read_bytes() == first


def test_a_folder_named_through_dot_dot_creates_no_folder_on_the_way(tmp_path, sender, invitation):
    """`file_directory = "mail/../outbox"`: the messages go to ./outbox, as the path says,
    and no empty ./mail is left behind by creating the folder's parents as written."""
    message = render_invitation(sender, invitation, key="i1", now=NOW)

    [result] = asyncio.run(FileTransport(tmp_path / "mail" / ".." / "outbox").send_many(outgoing([message])))

    assert result.outcome is Outcome.DELIVERED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outbox"]
    assert (tmp_path / "outbox" / eml_name(message["Message-ID"])).exists()


def test_file_names_are_safe():
    assert eml_name("<reminder.acme.0123abcd@acme.example>") == "reminder.acme.0123abcd@acme.example.eml"
    hostile = eml_name("<../../etc/passwd@x>")
    assert "/" not in hostile and not hostile.startswith(".")
    assert eml_name("<a/b@x>") != eml_name("<a_b@x>")


def test_unwritable_directory_is_transient(tmp_path, sender, invitation):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    message = render_invitation(sender, invitation, key="i1", now=NOW)

    [result] = asyncio.run(FileTransport(blocker / "outbox").send_many(outgoing([message])))

    assert result.outcome is Outcome.TRANSIENT
    assert result.message_id == message["Message-ID"]
