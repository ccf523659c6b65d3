"""Pages decoded and normalized in a second process, while the sync stores the ones before.

A large full pull is CPU-bound in one interpreter: reading a page's JSON into records costs
about as much as storing them, and the GIL runs one at a time. `Offload` hands each raw
body to a child interpreter (`python -m connectors.offload`) running the connector's own
pure reader (`JOBS`); the records (or, from the typed reader, their field dicts, which
msgpack writes alike) come back as msgpack, which msgspec turns straight into the record
dataclasses (about 2 ms a page, money as its exact decimal text, times as RFC 3339), so
the parent's share is that and the HTTP read.

Nothing is decided there that was not before: an answer the reader cannot read comes
back as None and the caller reads it in process, with the SDK's checks and errors. If the
child dies or stalls (no answer begun within the read timeout), the rest of the pull is read in
process too. One child serves one pull: it
is started by `start` (or on first use) and ends when `close` closes its input, or with its
parent (end of input either way). It ignores Ctrl-C (the parent decides) and answers in order.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from importlib import import_module
from typing import IO, Any

import msgspec

from connectors.gc_pace import fewer_collections
from portal_rules.records import RECORD_TYPES, Entity, Quarantined

try:
    import fcntl
except ImportError:  # not on Windows: pipes keep the system's size
    fcntl = None  # type: ignore[assignment]

# What the child may run: a job name and (body, entity, home currency) -> (records,
# quarantined, rows) or None. A name, never a path from the parent, picks the function.
JOBS = {"quickbooks.listing": "connectors.quickbooks.listed:listed_fields"}
PIPE_SIZE = 1 << 20  # asked for both pipes; a 1000-invoice body is ~2.7 MB, its answer ~0.8 MB
# The decoder works ahead of the store, whose commits are the pull's critical path: on a
# machine with fewer free cores than busy processes, it yields them to the store first (it
# still gets every cycle the store leaves, and all of them while the store waits for a page).
NICENESS = 10
STATS_ENV = "ARSYNC_OFFLOAD_STATS"  # a file the child appends its peak RSS to (benchmarks)

_REQUEST = struct.Struct("<II")  # header length, body length
_ANSWER = struct.Struct("<BI")  # status, payload length
_READ, _UNREADABLE, _FAILED = 0, 1, 2
_ENCODER = msgspec.msgpack.Encoder()
# records, quarantined, rows in the answer, and the first and last rows' ids
Read = tuple[list[Any], list[Quarantined], int, str | None, str | None]


class OffloadError(RuntimeError):
    """The child could not read a page (a bug in the reader, not a bad answer)."""


class _Ticket:
    """One request's place in the child's answers: (status, payload) once read, None if lost."""

    __slots__ = ("answer", "ready")

    def __init__(self) -> None:
        self.ready = False
        self.answer: tuple[int, bytearray] | None = None


class Offload:
    """One child process reading pages for one pull; safe to share between fetching threads.

    Requests are pipelined: a thread writes its page while the child still reads the one
    before (the child never waits for a body to cross the pipe), then waits for its answer.
    The child answers in the order it was asked; whichever waiting thread holds the read
    side reads the next answer and hands it to the request it belongs to.
    """

    def __init__(self, job: str, *, timeout: float = 120.0) -> None:
        if job not in JOBS:
            raise ValueError(f"unknown offload job {job!r}")
        self.job = job
        self.timeout = timeout  # for an answer to begin; a child that stalls longer is ended
        self._writing = threading.Lock()  # one request on the pipe at a time, in order
        self._reading = threading.Lock()  # one thread reads the answers at a time
        self._state = threading.Lock()  # the child, whether it is lost, the requests awaiting answers
        self._child: subprocess.Popen[bytes] | None = None
        self._broken = False
        self._pending: deque[_Ticket] = deque()  # written, not yet answered: the child's order
        self._decoders = {
            entity: msgspec.msgpack.Decoder(tuple[list[kind], list[Quarantined], int, str | None, str | None])  # type: ignore[valid-type]
            for entity, kind in RECORD_TYPES.items()
        }

    def start(self) -> None:
        """Start the child now, so its interpreter and imports (~0.15 s) are ready before the
        first page arrives instead of after it; a child that cannot start leaves pages to be
        read in process, as a lost one does."""
        with self._state:
            self._running()

    def read(self, body: bytes, entity: Entity, home_currency: str) -> Read | None:
        """The page's (records, quarantined, rows, first id, last id), or None: unreadable there,
        or the child is gone (then the caller reads it in process)."""
        header = _ENCODER.encode((self.job, entity, home_currency))
        ticket = _Ticket()
        with self._writing:
            with self._state:
                child = self._running()
                if child is None:
                    return None
                self._pending.append(ticket)
            try:
                assert child.stdin is not None
                child.stdin.write(_REQUEST.pack(len(header), len(body)))
                child.stdin.write(header)
                child.stdin.write(body)
                child.stdin.flush()
            except (OSError, ValueError) as error:
                self._lose(error)
        answer = self._answer_to(ticket)
        if answer is None:
            return None
        status, payload = answer
        if status == _UNREADABLE:
            return None
        if status == _FAILED:
            raise OffloadError(payload.decode("utf-8", "replace"))
        return self._decoders[entity].decode(payload)

    def close(self) -> None:
        """End the child (it exits at the end of its input) and wait for it."""
        with self._state:
            child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.close()
            child.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()
        finally:
            if child.stdout is not None:
                child.stdout.close()

    def _answer_to(self, ticket: _Ticket) -> tuple[int, bytearray] | None:
        """Read the child's answers in order until `ticket`'s is in (another thread may read it)."""
        while True:
            with self._reading:
                if ticket.ready:
                    return ticket.answer
                child = self._child
                try:
                    if child is None or child.stdout is None:
                        raise EOFError("the page decoder ended")
                    # Unbuffered: a buffered read could take in the next answer too, and then
                    # wait for it on the empty pipe.
                    answers = child.stdout.raw  # type: ignore[attr-defined]
                    _await(answers, self.timeout)
                    answer = _answer(answers)
                except (OSError, EOFError, ValueError, TimeoutError) as error:
                    self._lose(error)
                    continue
                with self._state:
                    if not self._pending:  # lost meanwhile: every request is read in process
                        continue
                    oldest = self._pending.popleft()
                oldest.answer, oldest.ready = answer, True

    def _lose(self, error: Exception) -> None:
        """The child is lost (ended, stalled, its pipe broken): every request awaiting an answer,
        and every later one, is read in process. A stalled child is ended: an answer it gave
        later would be out of step."""
        with self._state:
            first = not self._broken
            self._broken = True
            child = self._child
            if child is not None and child.poll() is None:
                child.kill()
            while self._pending:
                lost = self._pending.popleft()
                lost.answer, lost.ready = None, True
        if first:
            _lost(self.job, error)

    def _running(self) -> subprocess.Popen[bytes] | None:
        """The child, started if need be; None once it is lost or if it cannot start (then the
        pages are read in process). Under `_state`."""
        if self._broken:
            return None
        if self._child is None:
            try:
                self._child = subprocess.Popen(
                    [sys.executable, "-m", "connectors.offload"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    bufsize=1 << 20,
                )
            except OSError as error:
                self._broken = True
                _lost(self.job, error)
                return None
            _widen(self._child)
        return self._child


def _widen(child: subprocess.Popen[bytes]) -> None:
    """Pipes of a page's size where the system allows (Linux: 64 KiB by default, up to
    /proc/sys/fs/pipe-max-size, 1 MiB by default): a body crosses in a few writes, not ~40
    turns of parent and child."""
    resize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if resize is None:
        return
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(stream.fileno(), resize, PIPE_SIZE)


def _lost(job: str, error: Exception) -> None:
    """Log a child lost (or never started): the rest of the pull is read in process.

    structlog is imported here, in the parent, which has it loaded already: the child never
    logs, and importing it there (with rich, asyncio and ssl behind it) cost the child ~13 MB
    of its ~39 MB and ~70 ms of its start.
    """
    import structlog

    structlog.get_logger("arsync.connectors.offload").warning(
        "offload.child_lost", job=job, error=str(error), note="read in process now"
    )


def _await(stream: IO[bytes], timeout: float) -> None:
    """Until the child's answer begins, at most `timeout` seconds (where pipes can be polled)."""
    if os.name != "posix":
        return
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no answer from the page decoder in {timeout:g} s")


def _answer(stream: Any) -> tuple[int, bytearray]:
    head = _received(stream, _ANSWER.size)
    status, size = _ANSWER.unpack(head)
    return status, _received(stream, size)


def _received(stream: Any, size: int) -> bytearray:
    """Exactly `size` bytes from `stream` (a read from an unbuffered one may return part of them)."""
    data = bytearray(size)
    view, got = memoryview(data), 0
    while got < size:
        count = stream.readinto(view[got:])
        if not count:
            raise EOFError("the page decoder ended")
        got += count
    return data


def _job(name: str) -> Callable[..., Any]:
    module, function = JOBS[name].split(":")
    return getattr(import_module(module), function)


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The child's loop: a request in, its answer out, until the end of the input."""
    header_decoder = msgspec.msgpack.Decoder(tuple[str, str, str])
    while True:
        head = source.read(_REQUEST.size)
        if len(head) < _REQUEST.size:
            return
        header_size, body_size = _REQUEST.unpack(head)
        job, entity, home_currency = header_decoder.decode(_received(source, header_size))
        body = _received(source, body_size)
        try:
            result = _job(job)(body, entity, home_currency)
            status, payload = (
                (_UNREADABLE, b"") if result is None else (_READ, _ENCODER.encode(_read_of(result)))
            )
        except Exception as error:  # reported to the parent, which fails the sync with it
            status, payload = _FAILED, f"{type(error).__name__}: {error}".encode()
        del body
        sink.write(_ANSWER.pack(status, len(payload)))
        sink.write(payload)
        sink.flush()


def _read_of(listed: Any) -> Read:
    return listed.records, listed.quarantined, listed.rows, listed.first, listed.last


def _peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, OSError):  # no os.nice on Windows
        os.nice(NICENESS)
    with contextlib.suppress(EOFError, BrokenPipeError), fewer_collections():  # EOF: the parent went away
        serve(sys.stdin.buffer, sys.stdout.buffer)
    stats = os.environ.get(STATS_ENV)
    if stats:
        with open(stats, "a") as out:
            out.write(f"{_peak_rss_mb()}\n")


if __name__ == "__main__":
    main()
