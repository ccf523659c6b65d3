"""The CLI's command groups; importing this package registers them on `sync.cli.cli`."""

from sync.commands import admin, auth, db, demo, mail, run, statement, status, sync_cmd  # noqa: F401
