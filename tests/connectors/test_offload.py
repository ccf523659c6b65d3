"""Pages read in the page decoder's process (`connectors.offload`): a pull read there equals
one read here (quarantines included), answers it cannot read are left to the SDK's checks,
a lost child leaves the pages to this process, and the child ends with its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

from connectors.offload import NICENESS, STATS_ENV, Offload
from connectors.quickbooks.listed import listed
from tests.connectors.qbo_fixtures import (  # noqa: F401 - fixtures
    company_fixture,
    dated,
    pull,
    qbo_engine_fixture,
    world_fixture,
)
from tests.endtoend.test_kill import running

TIME = "2025-06-02T08:30:00-07:00"
GOOD = {
    "Id": "7", "CustomerRef": {"value": "3"}, "TotalAmt": 120.5, "Balance": 20.25, "DocNumber": "1007",
    "TxnDate": "2025-05-01", "DueDate": "2025-05-31", "CurrencyRef": {"value": "EUR"},
    "EmailStatus": "EmailSent", "MetaData": {"LastUpdatedTime": TIME}, "Line": [{"Amount": 120.5}],
}  # fmt: skip
BAD = {"Id": "8", "TotalAmt": 1, "Balance": 0, "MetaData": {"LastUpdatedTime": TIME}}  # no CustomerRef


def page(*rows: dict) -> bytes:
    return json.dumps({"QueryResponse": {"Invoice": list(rows)}, "time": TIME}).encode()


def shape(result):
    return [
        (p.entity, p.records, p.quarantined, p.cursor, p.api_calls, p.full_sync_complete, p.total)
        for p in result.pages
    ]


def test_a_pull_read_in_the_decoder_process_equals_one_read_here(world, tmp_path, monkeypatch):
    model = world.company
    orphan, infinite = (model.invoices[i] for i in list(dated(model))[:2])
    orphan.customer_id = ""
    infinite.total = Decimal("Infinity")
    next(iter(model.customers.values())).name = ""
    world.sim.touch()
    stats = tmp_path / "decoder.txt"
    monkeypatch.setenv(STATS_ENV, str(stats))

    here = pull(world.connector(page_size=300, offload_pages=0))
    assert not stats.exists()  # no decoder process for this pull
    there = pull(world.connector(page_size=300, offload_pages=1))
    assert len(stats.read_text().split()) == 1  # one decoder process for the pull, and it ended

    assert len(there.pages) > 10 and len(there.quarantined) == 3
    assert shape(there) == shape(here)
    assert [type(r) for r in there.invoices.values()] == [type(r) for r in here.invoices.values()]


def test_a_page_comes_back_as_this_process_reads_it():
    offload = Offload("quickbooks.listing")
    try:
        body = page(GOOD, BAD)
        records, quarantined, rows, first, last = offload.read(body, "invoices", "USD")
        expected = listed(body, "invoices", "USD")
        assert (records, quarantined, rows) == (expected.records, expected.quarantined, 2)
        assert (first, last) == (expected.first, expected.last) == (str(GOOD["Id"]), str(BAD["Id"]))
        assert records[0].total == Decimal("120.5") and str(records[0].balance) == "20.25"
        assert quarantined[0].reason == "missing CustomerRef"
    finally:
        offload.close()


def _invoice(number: int) -> dict:
    return GOOD | {"Id": str(number), "DocNumber": f"D{number}", "TotalAmt": number + 0.5}


def test_threads_asking_at_once_each_get_their_own_page_and_the_next_is_sent_before_an_answer():
    offload = Offload("quickbooks.listing", timeout=10)
    bodies = [page(*(_invoice(n * 10 + k) for k in range(1 + n % 3))) for n in range(12)]
    got: dict[int, object] = {}
    try:
        offload.start()
        offload._child.send_signal(signal.SIGSTOP)  # no answer while the requests go in
        threads = [
            threading.Thread(
                target=lambda n=n: got.__setitem__(n, offload.read(bodies[n], "invoices", "USD"))
            )
            for n in range(len(bodies))
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(offload._pending) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(offload._pending) >= 2  # a request written while the one before awaits its answer
        offload._child.send_signal(signal.SIGCONT)
        for thread in threads:
            thread.join(30)
    finally:
        offload.close()
    expected = {n: listed(body, "invoices", "USD") for n, body in enumerate(bodies)}
    assert {n: [r.doc_number for r in got[n][0]] for n in got} == {
        n: [r.doc_number for r in read.records] for n, read in expected.items()
    }


def test_a_decoder_lost_with_requests_waiting_leaves_each_of_them_to_this_process():
    offload = Offload("quickbooks.listing", timeout=0.5)
    got: list[object] = []
    try:
        offload.start()
        offload._child.send_signal(signal.SIGSTOP)  # stalls with every request unanswered
        threads = [
            threading.Thread(target=lambda: got.append(offload.read(page(GOOD), "invoices", "USD")))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert not any(thread.is_alive() for thread in threads)
        assert got == [None] * 4 and not offload._pending
        assert offload.read(page(GOOD), "invoices", "USD") is None  # and the rest of the pull
    finally:
        offload.close()


def test_a_decoder_started_ahead_is_the_one_that_reads():
    offload = Offload("quickbooks.listing")
    try:
        offload.start()  # the pull starts it once it knows its pages, before any answer
        child = offload._child
        assert child is not None and child.poll() is None
        assert offload.read(page(GOOD), "invoices", "USD") is not None
        offload.start()  # a second start changes nothing
        assert offload._child is child
    finally:
        offload.close()
    assert child.wait(timeout=10) == 0


def test_the_decoder_yields_the_cpu_to_the_store():
    offload = Offload("quickbooks.listing")
    try:
        assert offload.read(page(GOOD), "invoices", "USD") is not None  # it has set itself up
        child, here = offload._child.pid, os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, child) == min(here + NICENESS, 19)
    finally:
        offload.close()


def test_a_decoder_that_cannot_start_leaves_the_pages_to_this_process(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    offload = Offload("quickbooks.listing")
    try:
        offload.start()  # no exception: the pull goes on without it
        assert offload._child is None
        assert offload.read(page(GOOD), "invoices", "USD") is None  # read here instead
    finally:
        offload.close()


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Fault": {"Error": [{"Message": "boom"}], "type": "ValidationFault"}}).encode(),
        b"<html>proxy error</html>",
        json.dumps({"QueryResponse": {"Invoice": {"not": "a list"}}}).encode(),
    ],
    ids=["fault", "not-json", "other-shape"],
)
def test_an_answer_the_decoder_cannot_read_is_left_to_the_sdk(body):
    offload = Offload("quickbooks.listing")
    try:
        assert offload.read(body, "invoices", "USD") is None
        assert offload.read(page(GOOD), "invoices", "USD") is not None  # and it goes on
    finally:
        offload.close()


def test_a_lost_decoder_leaves_the_pages_to_this_process():
    offload = Offload("quickbooks.listing")
    try:
        assert offload.read(page(GOOD), "invoices", "USD") is not None
        child = offload._child
        child.kill()
        child.wait()
        assert offload.read(page(GOOD), "invoices", "USD") is None  # read here instead
        assert offload.read(page(GOOD), "invoices", "USD") is None
        assert offload._child is child  # no second child: the rest of the pull stays here
    finally:
        offload.close()


def test_a_stalled_decoder_is_ended_and_the_pages_read_here():
    offload = Offload("quickbooks.listing")
    try:
        # the first answer waits for the child's interpreter to start: >0.5 s on a loaded machine
        assert offload.read(page(GOOD), "invoices", "USD") is not None
        offload.timeout = 0.5
        child = offload._child
        child.send_signal(signal.SIGSTOP)  # alive, but answering nothing
        started = time.monotonic()
        assert offload.read(page(GOOD), "invoices", "USD") is None  # read here instead
        assert 0.4 < time.monotonic() - started < 5
        child.wait(timeout=5)  # ended, not left stopped
        assert offload.read(page(GOOD), "invoices", "USD") is None and offload._child is child
    finally:
        offload.close()


def test_the_decoder_process_loads_its_reader_alone():
    """The child's memory counts with the sync's: it imports the page reader, not structlog
    (with rich, asyncio and ssl behind it, ~13 MB) nor an SDK, an HTTP client or the store."""
    code = (
        "import sys, json\n"
        "from connectors import offload\n"
        f"body = {page(GOOD)!r}\n"
        "assert offload._job('quickbooks.listing')(body, 'invoices', 'USD').rows == 1\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert "msgspec" in loaded and "connectors" in loaded
    assert not loaded & {"structlog", "rich", "asyncio", "ssl", "quickbooks", "requests", "sqlalchemy"}


def test_an_unknown_job_is_refused():
    with pytest.raises(ValueError, match="unknown offload job"):
        Offload("anything:else")


PARENT = """
import sys, time, json
from connectors.offload import Offload
offload = Offload("quickbooks.listing")
body = json.dumps({"QueryResponse": {"Invoice": []}, "time": "2025-06-02T08:30:00-07:00"}).encode()
assert offload.read(body, "invoices", "USD") == ([], [], 0, None, None)
print(offload._child.pid, flush=True)
time.sleep(60)
"""


def test_the_decoder_ends_with_its_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not running(child)
    finally:
        parent.kill()
        parent.wait()
