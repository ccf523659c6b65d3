"""`arsync serve`: the HTTP face (portal API, webhooks, health, metrics) under uvicorn."""

from __future__ import annotations

import logging
import signal
import socket
import sys

import click

from sync.checks import check_http_secrets
from sync.cli import State, WorkFailed, pass_state, unopenable_store
from sync.logging import configure_logging

# Seconds an idle keep-alive connection stays open. A load balancer or reverse proxy reuses
# its idle connections for up to its own idle timeout (AWS ALB and nginx: 60 s); uvicorn's 5 s
# closed them first, and a request sent on one as it closed was a 502 to the client (a POST,
# a webhook's, is not retried). Longer than theirs, the proxy closes first.
KEEP_ALIVE = 75


@click.command()
@click.option("--host", help="Listen on this address (default: [http] host).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Listen on this port (default: [http] port; 0: any free one).",
)
@pass_state
def serve(state: State, host: str | None, port: int | None) -> None:
    """The HTTP server: portal API, accounting webhooks, /healthz, /readyz, /metrics. Stops on SIGTERM."""
    import uvicorn

    from sync.http.app import create_app

    config = state.config
    check_http_secrets(config)
    if not sys.stderr.isatty():
        configure_logging(config.log.level, "json")  # services log JSON under systemd and containers
    logging.getLogger("uvicorn.error").addFilter(_drop_color_message)
    host = host or config.http.host
    port = config.http.port if port is None else port
    app = create_app(config=config)
    _check_companies(app.state.context)
    listener = _listen(host, port)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
            timeout_keep_alive=KEEP_ALIVE,
        )
    )
    click.echo(f"arsync serve: listening on http://{host}:{listener.getsockname()[1]}", err=True)
    # uvicorn catches SIGTERM/SIGINT (stop accepting, finish the requests in hand), then raises
    # the signal again for the handler that was there before: a quiet one makes the exit 0.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[listener])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("arsync serve: stopped", err=True)


def _check_companies(context) -> None:
    """Refuse to start (exit 2, as every command does) on companies that do not read as one
    set: an id both in the file and in the store. A store not there or not migrated yet is
    left to `/readyz` (a service manager may start the server before the migration job)."""
    from sqlalchemy.exc import SQLAlchemyError

    from store.db import StoreNotMigrated, require_existing
    from sync.config import ConfigError
    from sync.http.context import CompaniesUnreadable

    try:
        require_existing(context.config.store.url)  # connecting would create an empty SQLite file
        context.companies()
    except CompaniesUnreadable as exc:
        raise ConfigError(str(exc)) from None
    except SQLAlchemyError as exc:
        problem = unopenable_store(context.config.store.url, exc)
        if problem is not None:  # a missing folder, another file: no migration job opens it
            raise problem from None
        return
    except StoreNotMigrated:
        return


def _drop_color_message(record: logging.LogRecord) -> bool:
    """uvicorn adds an ANSI-coloured copy of each message as an extra; logs keep the plain one."""
    record.__dict__.pop("color_message", None)
    return True


def _stopped(_signum: int, _frame: object) -> None:
    """The signal uvicorn re-raises after its graceful shutdown: nothing left to do."""


def _listen(host: str, port: int) -> socket.socket:
    """Bind here, so a taken port or a bad address is one clear line (exit 1), not uvicorn's exit."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only then, and
        # without it every small answer waited 40 ms for the client's delayed ACK.
        listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError as exc:
        raise WorkFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    listener.set_inheritable(True)
    return listener
