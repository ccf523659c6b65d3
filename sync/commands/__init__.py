"""The CLI's command groups; importing this package registers them on `sync.cli.cli`."""

from sync.commands import admin, auth, db, demo, health, mail, run, status, sync_cmd  # noqa: F401
