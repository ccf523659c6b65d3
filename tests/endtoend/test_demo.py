"""`arsync demo`, the README's main command: it runs on its own, writes mail, logs no secret."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys

from sqlalchemy import text

from store.crypto import SecretBox
from store.db import make_engine


def test_demo_runs_end_to_end_and_never_logs_a_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("ARSYNC_CONFIG", "ARSYNC_SECRET_KEY")}
    done = subprocess.run(
        [sys.executable, "-m", "sync", "demo", "--dir", str(tmp_path / "demo"), "--verbose"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for expected in (
        "first sync (full)",
        "second sync (incremental)",
        "what the portal shows",
        "Acme Landscaping (quickbooks",
        "Globex Ltd (xero",
        "adjustments: ",
    ):
        assert expected in out
    assert "acme: ok:" in out and "globex: ok:" in out
    assert "account history" in out and "closing balance" in out
    [statement] = (tmp_path / "demo").glob("statement-*.pdf")
    assert f"PDF statement written to {statement}" in out
    assert statement.read_bytes().startswith(b"%PDF-")
    mails = sorted((tmp_path / "demo" / "outbox").glob("*.eml"))
    assert mails, "the demo wrote no mail"
    parsed = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in mails]
    assert any("/invite/" in m.get_body(("plain",)).get_content() for m in parsed)
    # every secret the run held: stored tokens (plain, no key set) and the simulators' client secrets
    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 'arsync.db'}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT access_token, refresh_token FROM connections")).all()
    engine.dispose()
    secrets = {SecretBox(None).open(value) for row in rows for value in row if value}
    secrets |= {"sim-client-secret", "xero-sim-secret"}
    assert len(secrets) >= 6
    logged = done.stdout + done.stderr
    assert '"level": "debug"' in done.stderr  # the run really logged at debug level
    leaked = [s for s in secrets if s in logged]
    assert leaked == []
