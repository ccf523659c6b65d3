"""The CLI's commands, one module per area, each imported only when its command runs.

They are registered by path in `sync.cli.COMMANDS` (see `sync.cli.LazyGroup`).
"""
