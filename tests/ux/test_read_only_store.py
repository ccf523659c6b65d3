"""Commands that only read work on a store they cannot write (a read-only user, a PostgreSQL
standby): they open it without registering the file's companies, which is a write."""

from __future__ import annotations

import pytest

from sync.cli import main


@pytest.fixture
def read_only_config(tmp_path, pg_url, capsys):
    def config(url: str):
        path = tmp_path / f"arsync-{len(list(tmp_path.glob('*.toml')))}.toml"
        path.write_text(
            f'[store]\nurl = "{url}"\n'
            '[[companies]]\nid = "acme"\nname = "Acme"\n[companies.connection]\nkind = "quickbooks"\n'
        )
        return path

    writable = config(pg_url)
    assert main(["--config", str(writable), "db", "upgrade"]) == 0
    assert main(["--config", str(writable), "history"]) == 0  # registers acme while it can
    capsys.readouterr()
    # every transaction of this session refuses to write, as on a standby
    return config(f"{pg_url}%20-cdefault_transaction_read_only%3Don")


@pytest.mark.parametrize(
    "args, code",
    [
        (("history",), 0),
        (("history", "acme", "--json"), 0),
        (("company", "list"), 0),
        (("portal", "conflicts", "acme"), 0),
        (("customer", "health", "acme"), 0),
        (("customer", "invoices", "acme", "c1"), 2),  # no such customer: bad usage, not a failure
        (("statement", "acme", "c1"), 2),
        (("status",), 0),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_reading_commands_work_on_a_store_they_cannot_write(read_only_config, capsys, args, code):
    assert main(["--config", str(read_only_config), *args]) == code
    err = capsys.readouterr().err
    assert "read-only transaction" not in err and "Traceback" not in err, err


def test_the_store_really_refuses_writes(read_only_config, capsys):
    assert main(["--config", str(read_only_config), "customer", "pause-reminders", "acme", "c1"]) == 1
    assert "read-only transaction" in capsys.readouterr().err
