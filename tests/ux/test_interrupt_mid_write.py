"""Ctrl-C landing while the command is writing to stderr (the progress display, a log line)
still asks the work to stop: the notice must not be printed through the stream whose write
the signal interrupted ("RuntimeError: reentrant call inside <_io.BufferedWriter>")."""

from __future__ import annotations

import io
import os
import signal
import sys

from sync.interrupt import stop_on_interrupt


class SignalledMidWrite(io.RawIOBase):
    """stderr's descriptor, whose first write is interrupted by a SIGINT to this process."""

    def __init__(self, fd: int) -> None:
        self.fd, self.fired = fd, False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def write(self, data) -> int:
        if not self.fired:
            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)  # handled at this method's next bytecode
        return os.write(self.fd, bytes(data))


def test_a_signal_during_a_write_to_stderr_stops_the_work(monkeypatch):
    readable, writable = os.pipe()
    stream = io.TextIOWrapper(io.BufferedWriter(SignalledMidWrite(writable)), write_through=True)
    monkeypatch.setattr(sys, "stderr", stream)
    with stop_on_interrupt("the page in hand") as stop:
        print("  invoices 2,000 / 2,500", file=sys.stderr, flush=True)  # the buffered writer's lock held
        assert stop()
    monkeypatch.undo()
    os.close(writable)
    with os.fdopen(readable) as written:
        text = written.read()
    assert "arsync: stopping after the page in hand (Ctrl-C again to abort)\n" in text
    assert "  invoices 2,000 / 2,500\n" in text
