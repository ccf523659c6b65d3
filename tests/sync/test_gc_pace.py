"""Fewer garbage collections while a sync pulls (sync.gc_pace): raised for every pull in
the process, restored when the last one ends, whatever order they end in."""

from __future__ import annotations

import gc
import threading

from connectors.gc_pace import YOUNG_THRESHOLD, fewer_collections
from tests.sync.scripted import ScriptedSource
from tests.sync.test_orchestrator import customers, invoices, run


def test_a_sync_pulls_its_pages_with_fewer_collections_and_restores_the_default(company):
    before = gc.get_threshold()
    seen = []
    summary = run(
        company, ScriptedSource(customers(), invoices()), on_page=lambda s, p: seen.append(gc.get_threshold())
    )
    assert summary.status == "ok", summary.error
    assert seen and {threshold[0] for threshold in seen} == {max(before[0], YOUNG_THRESHOLD)}
    assert {threshold[1:] for threshold in seen} == {before[1:]}  # older generations as they were
    assert gc.get_threshold() == before


def test_overlapping_pulls_restore_the_threshold_after_the_last():
    before = gc.get_threshold()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    during = []

    def first() -> None:
        with fewer_collections():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with fewer_collections():
            second_in.set()
            first_out.wait(5)  # the first pull has ended; this one still runs
            during.append(gc.get_threshold())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert during == [(max(before[0], YOUNG_THRESHOLD), *before[1:])]
    assert gc.get_threshold() == before


def test_a_process_already_collecting_less_often_keeps_its_setting():
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD * 5, *before[1:])
    try:
        with fewer_collections():
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 5
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 5
    finally:
        gc.set_threshold(*before)
