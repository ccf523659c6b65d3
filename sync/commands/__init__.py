"""The CLI's command groups; importing this package registers them on `sync.cli.cli`."""

from sync.commands import admin, api_keys, auth, db, demo, mail, run, serve, status, sync_cmd  # noqa: F401
