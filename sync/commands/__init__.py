"""The CLI's command groups; importing this package registers them on `sync.cli.cli`."""

from sync.commands import (  # noqa: F401
    admin,
    api_keys,
    auth,
    db,
    demo,
    mail,
    run,
    serve,
    statement,
    status,
    sync_cmd,
)
