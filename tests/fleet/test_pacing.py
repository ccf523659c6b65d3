"""One company's API budget holds across processes sharing a PostgreSQL store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import DBAPIError

from connectors.base import Stopped, Tokens
from connectors.simulators.generator import sample_company
from connectors.simulators.quickbooks import QuickBooksSimulator
from store.credentials import DbCredentials
from store.db import make_engine
from store.owners import owner_id
from store.pacing import StorePacer
from sync.jobs import JobContext, keep_alive
from sync.runner import pacing_for
from tests.sync.test_keep_alive import opened


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


def test_counts_a_newer_worker_wrote_do_not_stop_this_one(pg_engine):
    """Mid-upgrade, a newer worker of the fleet keeps a field this version does not know in
    the company's counts: this worker's requests still go, and keep what it knows."""
    pacer = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=1)
    counts = json.dumps({"issued": 7, "answered": 7, "coming_later": [1, 2]})
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO pacing (company_id, sent, in_flight, counts)"
            " VALUES ('acme', '[]', '{}', %(counts)s)",
            {"counts": counts},
        )
    with pacer.slot():
        pacer.remaining_hint = 40
    with pg_engine.connect() as connection:
        stored = json.loads(connection.exec_driver_sql("SELECT counts FROM pacing").scalar())
    assert (stored["issued"], stored["answered"], stored["left"]) == (8, 8, 40)


@pytest.mark.timed
def test_the_slots_of_a_process_that_exited_come_back_at_once(pg_engine):
    """A sync killed (or failed with the store gone) while its requests were in flight leaves
    their slots behind, unexpired: the next sync of the company must not wait them out."""
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = {owner_id(int(exited.stdout), str(n)): time.time() + 300 for n in range(3)}
    alive = {owner_id(os.getpid(), "held"): time.time() + 300}
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO pacing (company_id, sent, in_flight) VALUES ('acme', '[]', %(in_flight)s)",
            {"in_flight": json.dumps(dead | alive)},
        )
    pacer = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=2)
    began = time.monotonic()
    with pacer.slot():  # the live one's slot still counts: 1 of 2 taken
        with pg_engine.connect() as connection:
            in_flight = json.loads(connection.exec_driver_sql("SELECT in_flight FROM pacing").scalar())
        assert set(in_flight) - set(alive) and set(alive) <= set(in_flight) and not set(dead) & set(in_flight)
    assert time.monotonic() - began < 2


@pytest.mark.timed
def test_a_slot_not_given_back_while_the_store_was_gone_comes_back_with_the_next(pg_engine):
    """A daemon's request ends while PostgreSQL restarts: the slot's release fails; the next
    slot this process takes must not count it (it would hold the cap for 300 s)."""
    pacer = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=1)
    gone = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/test")  # nothing listens there
    with pytest.raises(DBAPIError), pacer.slot():
        pacer.engine = gone
    gone.dispose()
    with pg_engine.connect() as connection:
        assert len(json.loads(connection.exec_driver_sql("SELECT in_flight FROM pacing").scalar())) == 1
    again = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=1)
    began = time.monotonic()
    with again.slot():
        pass
    assert time.monotonic() - began < 2
    with pg_engine.connect() as connection:
        assert json.loads(connection.exec_driver_sql("SELECT in_flight FROM pacing").scalar()) == {}


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


def test_token_keep_alive_takes_its_request_from_the_shared_budget(pg_url, monkeypatch):
    """A keep-alive refresh counts in the company's fleet-wide window like a sync's request;
    a company far from expiry makes no request and takes no slot."""
    now = datetime.now(UTC)
    with QuickBooksSimulator(sample_company("quickbooks", today=now.date())) as sim:
        monkeypatch.setenv("KA_SECRET", sim.tokens.client_secret)
        app = opened(pg_url, sim, ("soon", "later"))
        for company, days_left in (("soon", 3), ("later", 40)):
            pair = sim.tokens.issue()
            expires = now + timedelta(days=days_left)
            DbCredentials(app.engine, company, app.box).save(
                Tokens(pair.access_token, pair.refresh_token, now + timedelta(hours=1), expires)
            )
        keep_alive(JobContext(app, app.config, lambda: datetime.now(UTC), lambda: False, "test"))
        with app.engine.connect() as db:
            rows = dict(db.exec_driver_sql("SELECT company_id, sent FROM pacing").all())
        app.close()
    assert sim.tokens.refreshes == 1
    assert {company: len(json.loads(sent)) for company, sent in rows.items()} == {"soon": 1}


def counted(pacer: StorePacer, left: int, sent: threading.Event, answer: threading.Event) -> None:
    """One request on its own thread: sent, then its answer's count noted when `answer` is set."""
    with pacer.slot():
        sent.set()
        assert answer.wait(10)
        pacer.remaining_hint = left  # as the Xero client does, in the request's thread


def test_a_spent_count_one_process_heard_holds_every_process(pg_engine, pg_url):
    """Xero says the minute is spent (another app used it): the other worker's next request
    waits for the window too, instead of drawing a 429."""
    other = make_engine(pg_url)
    first = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=5, margin=0.1)
    second = StorePacer(other, "acme", per_window=100, window=1.0, concurrent=5, margin=0.1)
    began = time.monotonic()
    with first.slot():
        first.remaining_hint = 0
    with second.slot():
        waited = time.monotonic() - began
    other.dispose()
    assert waited >= 1.0
    # The spent window held one send: until a count is heard afresh, no window holds more
    # (the one sent after the wait takes its place).
    assert second.remaining_hint == 0


def test_an_answer_counted_early_cannot_raise_a_shared_count_a_later_one_lowered(pg_engine):
    """Two requests in flight; the provider counted the second first (1 left) and the first
    after it (0 left); the first's answer comes back first: the window is spent."""
    pacer = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=5, margin=0.1)
    events = [(threading.Event(), threading.Event()) for _ in range(2)]
    threads = [
        threading.Thread(target=counted, args=(pacer, left, sent, answer))
        for left, (sent, answer) in zip((0, 1), events, strict=True)
    ]
    began = time.monotonic()
    for thread, (sent, _) in zip(threads, events, strict=True):
        thread.start()
        assert sent.wait(10)
    for thread, (_, answer) in zip(threads, events, strict=True):
        answer.set()
        thread.join(10)
    with pacer.slot():
        waited = time.monotonic() - began
    assert waited >= 1.0


@pytest.mark.timed
def test_a_shared_count_allows_for_requests_still_on_their_way(pg_engine, pg_url):
    """The provider allows 3 a window. One process's request is still on its way when
    another's, let go after it, is counted first (2 left): one more may go, not two."""
    other = make_engine(pg_url)
    other.connect().close()  # its connection made before the clock starts: pacing is timed, not a login
    first = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=5, margin=0.1)
    second = StorePacer(other, "acme", per_window=100, window=1.0, concurrent=5, margin=0.1)
    sent, answer = threading.Event(), threading.Event()
    late = threading.Thread(target=counted, args=(first, 0, sent, answer))
    late.start()
    assert sent.wait(10)
    began = time.monotonic()
    with second.slot():
        second.remaining_hint = 2
    with second.slot():
        pass
    assert time.monotonic() - began < 0.5
    with second.slot():  # waits the window out
        pass
    assert time.monotonic() - began >= 1.0
    answer.set()
    late.join(10)
    other.dispose()


@pytest.mark.timed
def test_after_a_spent_window_only_as_many_go_as_left_it(pg_engine):
    """The provider counts a sliding window of 3: sends 0.3 s apart spend it. After the
    wait, one may go (the first send left); the next waits for the second to leave."""
    pacer = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=5, margin=0.1)
    began = time.monotonic()
    for left in (2, 1, 0):
        with pacer.slot():
            pacer.remaining_hint = left
        time.sleep(0.3)  # the sends' spacing is what is tested
    entered = []
    for _ in range(2):
        with pacer.slot():
            entered.append(time.monotonic() - began)
    assert entered[0] >= 1.1  # the first send's window and margin
    assert entered[1] >= 0.3 + 1.1  # the second's: not at once with the first
    assert entered[1] < 2.0


@pytest.mark.timed
def test_a_stale_count_after_a_spent_window_was_waited_out_is_ignored(pg_engine):
    """An answer to a request let go before the wait says nothing of the next window."""
    pacer = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=5, margin=0.1)
    sent, answer = threading.Event(), threading.Event()
    late = threading.Thread(target=counted, args=(pacer, 0, sent, answer))
    late.start()
    assert sent.wait(10)
    with pacer.slot():
        pacer.remaining_hint = 0
    began = time.monotonic()
    with pacer.slot():  # waits the window out
        pass
    assert time.monotonic() - began >= 0.5
    answer.set()  # the request let go before the wait answers now, with its old count
    late.join(10)
    began = time.monotonic()
    with pacer.slot():
        pass
    assert time.monotonic() - began < 0.5


def test_a_process_holding_every_slot_queues_its_threads_without_polling_the_store(pg_engine):
    """Six threads of one process, two slots: the four waiting wait for a slot of their own
    process to come back, not by asking the store every 50 ms."""
    waits: list[float] = []
    pacer = StorePacer(pg_engine, "acme", per_window=100, window=1.0, concurrent=2, sleep=waits.append)
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def request() -> None:
        with pacer.slot():
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.1)
            with lock:
                in_flight[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak[0] == 2 and waits == []
