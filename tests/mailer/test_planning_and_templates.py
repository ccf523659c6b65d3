# ruff: noqa: F811 - the e2e fixtures make_shop and smtp are imported, then requested by name
"""Reminder planning and per-company templates, from outside (the `arsync` CLI and the
daemon's jobs, a real SMTP server on loopback, data stored the way a sync stores it).

Pins down: one company's broken template never stops the others' reminders (daemon job and
CLI) and is named by company, file and line, with nothing queued for it; a missing
`template_dir` is a configuration error (exit 2) naming the key and the file; the daemon
writes `.eml` files where `arsync mail dispatch` does (next to the config file); and
concurrent planners each report only the reminders they enqueued.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from store import access_requests
from store.jobs import REQUESTED, claim_job, ensure_jobs, finish_job
from store.workers import register_worker
from sync.app import App
from sync.commands.status import REQUESTS_FAILING
from sync.config import Config, load_config
from sync.jobs import JobContext, answer_requests, plan
from sync.jobs import send as dispatch_job
from sync.orchestrator import sync_company
from sync.settings import company_policy
from tests.endtoend.mail.conftest import (  # noqa: F401 - make_shop and smtp are fixtures
    COMPANY,
    FRIDAY_10AM,
    SYNCED_AT,
    Shop,
    customer,
    invoice,
    iso,
    make_shop,
    smtp,
)
from tests.sync.scripted import ScriptedSource

MINUTE = timedelta(minutes=1)
BROKEN = "Dear {{ customer_name }\n"  # a Jinja syntax error on line 1: unexpected '}'


def add_company(path: Path, company_id: str, **settings: object) -> None:
    """Append a second company (scripted connection) to an e2e config file."""
    lines = ["", "[[companies]]", f'id = "{company_id}"', f'name = "{company_id.title()} Inc"']
    lines += ['timezone = "America/New_York"', 'portal_url = "https://portal.beta.example"']
    lines += [f"{key} = {value!r}".replace("'", '"') for key, value in settings.items()]
    lines += ["", "[companies.connection]", 'kind = "scripted"', ""]
    with path.open("a", encoding="utf-8") as file:
        file.write("\n".join(lines))


def broken_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "acme-templates"
    folder.mkdir()
    (folder / "reminder.txt").write_text(BROKEN, encoding="utf-8")
    return folder


def acme_broken_and_beta_due(make_shop, sqlite_url: str, tmp_path: Path) -> tuple[Shop, Config]:
    """acme (a reminder due, its reminder.txt broken) followed by beta (a reminder due)."""
    shop = make_shop(sqlite_url, template_dir=str(broken_templates(tmp_path)))
    add_company(shop.path, "beta")
    config = load_config(shop.path)
    shop.sync([customer("1", "Café", "ap@cafe.example")], [invoice("10", "1", date(2026, 11, 20), "1.00")])
    source = ScriptedSource(
        [customer("1", "Globex", "ap@globex.example")],
        [invoice("20", "1", date(2026, 11, 20), "2.00")],
        page_size=500,
    )
    summary = sync_company(
        shop.engine,
        "beta",
        company_policy(config.company("beta")),
        source,
        owner="e2e",
        clock=lambda: SYNCED_AT,
    )
    assert summary.status == "ok", summary.error
    return shop, config


# --- one company's broken template stops every other company's reminders ---------------------


def test_a_broken_template_of_one_company_does_not_stop_the_others_reminders(
    make_shop, sqlite_url, smtp, tmp_path
):
    """The daemon's reminder job (`sync.jobs.plan`) loops over the companies with no guard:
    acme's template with a syntax error raises out of the loop, so beta (after it) never gets
    a reminder planned, every minute, for as long as acme's template stays broken. Syncs are
    isolated per company ("one company's crash never stops the others"); reminders are not."""
    shop, config = acme_broken_and_beta_due(make_shop, sqlite_url, tmp_path)
    beta_alone = shop.cli("reminders", "plan", "--dry-run", "beta", "--now", iso(FRIDAY_10AM))
    assert "beta: would enqueue 1 reminder email(s)" in beta_alone.out, beta_alone.err

    app = App.open(config)
    try:
        with contextlib.suppress(Exception):  # acme's own failure is acme's: the daemon logs it
            plan(JobContext(app, app.config, lambda: FRIDAY_10AM, lambda: False, "host:1:w1"))
    finally:
        app.close()

    assert shop.rows("SELECT company_id, recipient FROM outbox") == [("beta", "ap@globex.example")]


def test_reminders_plan_plans_the_other_companies_and_then_fails_naming_the_broken_one(
    make_shop, sqlite_url, smtp, tmp_path
):
    """`arsync reminders plan` (every company) plans beta, names acme's broken file and line,
    and exits 1: the work failed for acme."""
    shop, _ = acme_broken_and_beta_due(make_shop, sqlite_url, tmp_path)

    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM))

    assert planned.code == 1
    assert "beta: enqueued 1 reminder email(s)" in planned.out
    assert "acme (" in planned.err and "reminder.txt, line 1: unexpected '}'" in planned.err
    assert "unexpected error" not in planned.err
    assert shop.rows("SELECT company_id, recipient FROM outbox") == [("beta", "ap@globex.example")]


def test_a_template_whose_expression_raises_is_named_and_the_other_companies_are_planned(
    make_shop, sqlite_url, smtp, tmp_path
):
    """An override whose expression raises a plain Python error while rendering (`{{ 'a' + 1 }}`:
    a TypeError, not a Jinja one) is the same admin's problem as a syntax error: named by
    company, file and line, with beta still planned, not "unexpected error" stopping them all."""
    shop, _ = acme_broken_and_beta_due(make_shop, sqlite_url, tmp_path)
    (tmp_path / "acme-templates" / "reminder.txt").write_text("Hello\n{{ 'a' + 1 }}\n", encoding="utf-8")

    planned = shop.process("reminders", "plan", "--now", iso(FRIDAY_10AM))

    assert planned.code == 1
    assert "beta: enqueued 1 reminder email(s)" in planned.out
    assert "reminder.txt, line 2: TypeError: can only concatenate str" in planned.err, planned.err
    assert "unexpected error" not in planned.err
    assert shop.rows("SELECT company_id, recipient FROM outbox") == [("beta", "ap@globex.example")]


def test_invite_with_a_broken_invitation_template_names_the_file_and_sends_nothing(
    make_shop, sqlite_url, smtp, tmp_path
):
    """`arsync invite` and `arsync portal request-access` say which file and line of the
    company's invitation templates is broken, as `reminders plan` does, and issue nothing;
    request access fails the same way whether or not the email matches (no enumeration)."""
    folder = tmp_path / "acme-templates"
    folder.mkdir()
    shop = make_shop(sqlite_url, template_dir=str(folder))
    shop.sync([customer("1", "Café", "ap@cafe.example")], [])
    before = shop.snapshot()
    for body, said in ((BROKEN, "line 1: unexpected '}'"), ("{{ nope }}\n", "line 1: 'nope' is undefined")):
        (folder / "invitation.txt").write_text(body, encoding="utf-8")

        invited = shop.process("invite", COMPANY, "--customer", "1", "--now", iso(FRIDAY_10AM))

        assert invited.code == 1
        assert "invitations not sent: acme (" in invited.err and f"invitation.txt, {said}" in invited.err
        assert "unexpected error" not in invited.err
        assert shop.snapshot() == before
    (folder / "invitation.txt").write_text(BROKEN, encoding="utf-8")
    answers = [
        shop.process("portal", "request-access", COMPANY, address, "--now", iso(FRIDAY_10AM))
        for address in ("ap@cafe.example", "nobody@example.com")
    ]
    assert answers[0] == answers[1] and answers[0].code == 1
    assert "invitation.txt, line 1: unexpected '}'" in answers[0].err
    assert shop.snapshot() == before
    assert smtp.received == []


# --- the file transport writes to one folder from the CLI and to another from the daemon -----


def test_the_daemon_writes_eml_files_where_mail_dispatch_does(
    make_shop, sqlite_url, smtp, tmp_path, monkeypatch
):
    """`file_directory = "outbox"` is taken relative to the config file by `arsync mail
    dispatch` (`sync/commands/mail.py` passes `base_dir=config_path.parent`) but relative to
    the working directory by the daemon's dispatch job (`sync/jobs.py` calls `transport(config)`
    without it): under systemd (working directory /) the daemon writes to /outbox."""
    shop = make_shop(sqlite_url)
    text = shop.path.read_text(encoding="utf-8").replace('transport = "smtp"', 'transport = "file"')
    shop.path.write_text(text.replace("[mail]\n", '[mail]\nfile_directory = "outbox"\n'), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    shop.sync(
        [customer("1", "Café", "ap@cafe.example"), customer("2", "Globex", "ap@globex.example")],
        [invoice("10", "1", date(2026, 11, 20), "1.00")],
    )
    by_cli = shop.cli("invite", COMPANY, "--customer", "2", "--now", iso(FRIDAY_10AM))
    assert by_cli.code == 0, by_cli.err
    # nothing was emailed: the count says where the message went instead of "1 sent"
    outbox = shop.path.parent / "outbox"
    assert f"mail: 1 written to {outbox} (file transport, not emailed), 0 failed" in by_cli.out
    assert shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM)).code == 0

    config = load_config(shop.path)
    app = App.open(config)
    try:
        dispatch_job(JobContext(app, app.config, lambda: FRIDAY_10AM, lambda: False, "host:1:w1"))
    finally:
        app.close()

    assert shop.rows("SELECT kind, status FROM outbox ORDER BY id") == [
        ("invitation", "sent"),
        ("reminder", "sent"),
    ]
    assert not (elsewhere / "outbox").exists()
    assert len(list((shop.path.parent / "outbox").glob("*.eml"))) == 2


def test_the_outbox_folder_is_printed_normalised(make_shop, sqlite_url, smtp, tmp_path):
    """A relative `file_directory` with `..` (`../<this folder>/outbox`) was joined to the
    config file's folder and printed as written: "written to /tmp/x/../x/outbox". The message
    names the folder plainly; the files are where it says."""
    shop = make_shop(sqlite_url)
    text = shop.path.read_text(encoding="utf-8").replace('transport = "smtp"', 'transport = "file"')
    roundabout = f'[mail]\nfile_directory = "../{tmp_path.name}/outbox"\n'
    shop.path.write_text(text.replace("[mail]\n", roundabout), encoding="utf-8")
    shop.sync([customer("2", "Globex", "ap@globex.example")], [])

    invited = shop.cli("invite", COMPANY, "--customer", "2", "--now", iso(FRIDAY_10AM))

    assert invited.code == 0, invited.err
    assert f"mail: 1 written to {tmp_path / 'outbox'} (file transport, not emailed)" in invited.out
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


# --- concurrent planners each report every reminder as theirs ---------------------------------


def test_concurrent_planners_report_only_the_reminders_they_enqueued(make_shop, pg_url, smtp):
    """The at-most-once ledger holds (one email per customer), but every `arsync reminders
    plan` that lost the race still prints "enqueued 300 reminder email(s)" (and the daemon
    logs `daemon.reminders_planned emails=300` on each worker): `sync/reminders.py` fills
    `report.planned` before enqueuing, and `_enqueue_batch` drops the lost customers silently."""
    shop = make_shop(pg_url)
    count = 300
    shop.sync(
        [customer(str(n), f"Customer {n}", f"c{n}@example.com") for n in range(count)],
        [invoice(f"{n}0", str(n), date(2026, 11, 1), "1.00") for n in range(count)],
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_DEBUG")}
    command = [sys.executable, "-m", "sync", "--config", str(shop.path), "reminders", "plan"]
    command += ["--now", iso(FRIDAY_10AM)]
    planners = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [planner.communicate(timeout=120)[0] for planner in planners]

    assert [planner.returncode for planner in planners] == [0, 0, 0]
    assert shop.scalar("SELECT COUNT(DISTINCT recipient) FROM outbox") == count
    reported = [int(re.search(r"acme: enqueued (\d+) reminder", out).group(1)) for out in outputs]
    assert sum(reported) == shop.scalar("SELECT COUNT(*) FROM outbox") == count


# --- per-company templates: a missing folder or a broken file, as the operator sees it ---------


def test_a_missing_template_dir_is_a_configuration_error_naming_the_key(
    make_shop, sqlite_url, smtp, tmp_path
):
    """SPEC 6/7: bad configuration is exit 2 with a message naming the key and the file.
    A `template_dir` that does not exist passes validation (`arsync status`, `arsync run`
    start fine) and each mail command then fails with "arsync: unexpected error: ValueError:
    template_dir ... is not a directory", exit 1 (`mailer/environment.py` checks it at render
    time; `sync/config.py` has no validator for it)."""
    shop = make_shop(sqlite_url, template_dir=str(tmp_path / "no-such-folder"))
    shop.sync([customer("1", "Café", "ap@cafe.example")], [invoice("10", "1", date(2026, 11, 20), "1.00")])

    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM))

    assert planned.code == 2, planned.err
    assert "template_dir" in planned.err and str(shop.path) in planned.err
    assert "unexpected error" not in planned.err
    daemon = shop.process("run")  # refused as it starts, not failing every minute after
    assert daemon.code == 2 and "companies[0].template_dir" in daemon.err, daemon.err


def test_a_relative_template_dir_is_found_from_the_configuration_files_folder(
    make_shop, sqlite_url, smtp, tmp_path, monkeypatch
):
    """`template_dir = "acme-templates"` names the folder beside the configuration file, as
    `mail.file_directory` does, whatever the working directory of the command or daemon."""
    folder = tmp_path / "acme-templates"
    folder.mkdir()
    (folder / "reminder.txt").write_text("Acme's own words for {{ customer_name }}.\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where a relative folder used to be looked for
    shop = make_shop(sqlite_url, template_dir="acme-templates")
    shop.sync([customer("1", "Café", "ap@cafe.example")], [invoice("10", "1", date(2026, 11, 20), "1.00")])

    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM))

    assert planned.code == 0, planned.err
    [(payload,)] = shop.rows("SELECT payload FROM outbox")
    text = email.message_from_string(payload, policy=email.policy.default).get_body(("plain",))
    assert text.get_content() == "Acme's own words for Café.\n"


def test_a_broken_template_is_named_in_the_message_and_nothing_is_queued(
    make_shop, sqlite_url, smtp, tmp_path
):
    """A company's `reminder.txt` with a syntax error: `arsync reminders plan` says only
    "arsync: unexpected error: TemplateSyntaxError: unexpected '}'"; the admin is not told
    which file (nor line) of which company is broken."""
    broken = tmp_path / "acme-templates"
    broken.mkdir()
    (broken / "reminder.txt").write_text("Dear {{ customer_name }\n", encoding="utf-8")
    shop = make_shop(sqlite_url, template_dir=str(broken))
    shop.sync([customer("1", "Café", "ap@cafe.example")], [invoice("10", "1", date(2026, 11, 20), "1.00")])

    planned = shop.cli("reminders", "plan", "--now", iso(FRIDAY_10AM))

    assert planned.code != 0
    assert "reminder.txt" in planned.err
    assert shop.scalar("SELECT COUNT(*) FROM outbox") == 0
    assert smtp.received == []


@pytest.mark.parametrize(
    ("body", "said"),
    [(BROKEN, "line 1: unexpected '}'"), ("{{ nope }}\n", "line 1: 'nope' is undefined")],
    ids=["syntax-error", "unknown-name"],
)
def test_a_broken_invitation_template_keeps_requested_invitations_waiting_and_says_why(
    make_shop, sqlite_url, smtp, tmp_path, body, said
):
    """The worker issues the invitations portal requests decided on (`sync.jobs.send`): with
    the company's invitation.txt broken it logs which file and line, once a dispatch, with
    no traceback, and the request waits for the fix instead of being dropped."""
    folder = tmp_path / "acme-templates"
    folder.mkdir()
    (folder / "invitation.txt").write_text(body, encoding="utf-8")
    shop = make_shop(sqlite_url, template_dir=str(folder))
    shop.sync([customer("1", "Café", "ap@cafe.example")], [])
    assert access_requests.record_access_request(shop.engine, COMPANY, "ap@cafe.example", now=FRIDAY_10AM)
    app = App.open(load_config(shop.path))
    run_at = FRIDAY_10AM + timedelta(seconds=1)
    ensure_jobs(shop.engine, [REQUESTED], now=FRIDAY_10AM)
    # as a worker's loop runs it: claimed, run, let go
    assert claim_job(
        shop.engine, REQUESTED, "host:1:w1", now=run_at, interval=timedelta(minutes=1), ttl=MINUTE
    )
    try:
        with capture_logs() as logs:
            answer_requests(JobContext(app, app.config, lambda: run_at, lambda: False, "host:1:w1"))
    finally:
        finish_job(shop.engine, REQUESTED, "host:1:w1")
        app.close()
    [failed] = [e for e in logs if e["event"] == "daemon.requested_invitations_failed"]
    assert failed["log_level"] == "error" and "exc_info" not in failed
    assert f"invitation.txt, {said}" in failed["error"]
    assert len(access_requests.requested_invites(shop.engine, COMPANY)) == 1
    assert shop.rows("SELECT recipient FROM outbox") == []
    # `status` does not promise the next dispatch while a live worker's dispatches keep failing
    register_worker(shop.engine, "host:1:w1", concurrency=1, ttl=MINUTE)
    status = shop.cli("status", "--json")
    assert status.code == 0
    [row] = json.loads(status.out)
    assert row["requested_invitations"]["detail"] == REQUESTS_FAILING
    assert "daemon.requested_invitations_failed" in shop.cli("status").out
    # while the job runs (a slow mail server, say), waiting is not failing
    assert claim_job(shop.engine, REQUESTED, "host:1:w1", now=datetime.now(UTC), interval=MINUTE, ttl=MINUTE)
    [row] = json.loads(shop.cli("status", "--json").out)
    assert row["requested_invitations"]["detail"].startswith("a worker is issuing requested invitations")
