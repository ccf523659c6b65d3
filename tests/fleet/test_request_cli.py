"""`arsync sync --request`: recorded for the workers, coalesced, unknown companies refused."""

from __future__ import annotations

import json

from sqlalchemy import text

from store.db import make_engine


def requested(store_url: str) -> dict[str, str | None]:
    engine = make_engine(store_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT company_id, request_reason FROM sync_schedule WHERE requested_at IS NOT NULL")
        )
        out = dict(rows.all())
    engine.dispose()
    return out


def test_request_records_and_coalesces(cli):
    code, out, err = cli("sync", "--request", "acme")
    assert (code, out) == (0, "acme: sync requested\n"), err
    code, out, _ = cli("sync", "--request", "--json", "acme", "globex")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"company": "acme", "requested": True, "coalesced": True},
        {"company": "globex", "requested": True, "coalesced": False},
    ]
    assert requested(cli.store_url) == {"acme": "arsync sync --request", "globex": "arsync sync --request"}


def test_request_of_an_unknown_company_is_exit_2(cli):
    code, out, err = cli("sync", "--request", "initech")
    assert (code, out) == (2, "")
    assert "no company 'initech'" in err and "known: acme, globex" in err
    assert requested(cli.store_url) == {}


def test_request_with_full_is_bad_usage(cli):
    code, _, err = cli("sync", "--request", "--full", "acme")
    assert code == 2 and "--full cannot be combined with --request" in err
