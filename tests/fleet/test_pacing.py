"""One company's API budget holds across processes sharing a PostgreSQL store."""

from __future__ import annotations

import json
import threading
import time

import pytest

from connectors.base import Stopped
from store.db import make_engine
from store.pacing import StorePacer
from sync.runner import pacing_for


def test_pacers_in_separate_processes_share_one_window_and_one_concurrency_cap(pg_engine, pg_url):
    """Three "processes" (an engine each) send 12 requests at 4 per second, 2 in flight, together."""
    engines = [make_engine(pg_url) for _ in range(3)]
    entered: list[float] = []
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def client(engine) -> None:
        pacer = StorePacer(engine, "acme", per_window=4, window=1.0, concurrent=2, margin=0.2)
        for _ in range(4):
            with pacer.slot():
                with lock:
                    entered.append(time.monotonic())
                    in_flight[0] += 1
                    peak[0] = max(peak[0], in_flight[0])
                time.sleep(0.02)
                with lock:
                    in_flight[0] -= 1

    threads = [threading.Thread(target=client, args=(engine,)) for engine in engines]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines:
        engine.dispose()
    assert len(entered) == 12 and peak[0] <= 2
    # 4 sends per 1.2 s (window and margin) shared by all: the last 4 wait two windows. Each
    # client alone would have sent its 4 at once.
    assert max(entered) - began >= 2 * 1.2 - 0.05


def test_a_slot_of_a_killed_process_comes_back(pg_engine):
    """A request in flight of a process that died (its slot expired) does not block the cap."""
    pacer = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=1)
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO pacing (company_id, sent, in_flight) VALUES ('acme', '[]', '{\"dead\": 0}')"
        )
    with pacer.slot():
        pass
    with pg_engine.connect() as connection:
        sent, in_flight = connection.exec_driver_sql("SELECT sent, in_flight FROM pacing").one()
    assert (len(json.loads(sent)), json.loads(in_flight)) == (1, {})


def test_a_stop_ends_a_wait_for_the_shared_budget(pg_engine):
    """`arsync run` on SIGTERM: a sync waiting a minute for the fleet's budget stops at once."""
    stop = threading.Event()
    factory = pacing_for(pg_engine, "acme", stop.is_set)
    assert factory is not None
    pacer = factory(1, 60.0, 1)
    with pacer.slot():  # the minute's one request
        pass
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    with pytest.raises(Stopped), pacer.slot():  # would wait about a minute
        raise AssertionError("entered a slot the budget does not have")
    assert time.monotonic() - began < 5
