"""`/metrics`: a Prometheus collector that reads the store at scrape time.

One registry per application (never the process-global default), so two apps in one
process, as in tests, never share or double-register metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from mailer.admin import STATUSES
from store.metrics import store_counts

# How runs ended: a run only ever moves from `running` to one of these, so their counts
# only grow. Runs still running are a current count: the `arsync_syncs_running` gauge.
SYNC_STATUSES = ("ok", "failed", "interrupted")
RUNNING = "running"


class StoreCollector(Collector):
    """Per-company counters and gauges, every configured company present even at zero.

    Counters (`CounterMetricFamily` adds the `_total` suffix) only ever grow; the outbox and
    in-doubt figures are current counts, so they are gauges, and a gauge never ends in `_total`
    (Prometheus naming: that suffix tells a counter, and `rate()` over a gauge is wrong).
    """

    def __init__(self, engine: Engine, company_ids: Callable[[], Iterable[str]]) -> None:
        self.engine = engine
        self.company_ids = company_ids

    def collect(self) -> Iterator[Metric]:
        counts = store_counts(self.engine)
        companies = sorted(
            set(self.company_ids()) | {c for c, _ in counts.syncs} | {c for c, _ in counts.outbox}
        )
        syncs = CounterMetricFamily(
            "arsync_syncs", "Sync runs by how they ended", labels=["company", "status"]
        )
        running = GaugeMetricFamily("arsync_syncs_running", "Sync runs running now", labels=["company"])
        calls = CounterMetricFamily(
            "arsync_api_calls", "Accounting API requests made by syncs", labels=["company"]
        )
        quarantined = CounterMetricFamily(
            "arsync_quarantined_records", "Records the rules could not parse", labels=["company"]
        )
        outstanding = GaugeMetricFamily(
            "arsync_quarantine_outstanding",
            "Records the books hold that no sync could read since: stored rows as last read, reminders held",
            labels=["company"],
        )
        outbox = GaugeMetricFamily(
            "arsync_outbox_messages", "Outbox messages by state now", labels=["company", "state"]
        )
        in_doubt = GaugeMetricFamily(
            "arsync_mail_in_doubt", "Messages in doubt now, waiting for an admin", labels=["company"]
        )
        requested = GaugeMetricFamily(
            "arsync_requested_invitations",
            "Invitations portal requests decided on that no worker has issued yet",
            labels=["company"],
        )
        abandoned = GaugeMetricFamily(
            "arsync_syncs_abandoned_in_a_row",
            "Syncs in a row a worker began and never finished (killed, lost): each holds it back longer",
            labels=["company"],
        )
        for company in companies:
            statuses = sorted(set(SYNC_STATUSES) | {s for c, s in counts.syncs if c == company} - {RUNNING})
            for status in statuses:
                syncs.add_metric([company, status], counts.syncs.get((company, status), 0))
            running.add_metric([company], counts.syncs.get((company, RUNNING), 0))
            calls.add_metric([company], counts.api_calls.get(company, 0))
            quarantined.add_metric([company], counts.quarantined.get(company, 0))
            outstanding.add_metric([company], counts.outstanding.get(company, 0))
            for state in STATUSES:
                outbox.add_metric([company, state], counts.outbox.get((company, state), 0))
            in_doubt.add_metric([company], counts.outbox.get((company, "in_doubt"), 0))
            requested.add_metric([company], counts.requested_invites.get(company, 0))
            abandoned.add_metric([company], counts.abandoned.get(company, 0))
        yield from (syncs, running, calls, quarantined, outstanding, outbox, in_doubt, requested, abandoned)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no store query at registration time


def registry_for(engine: Engine, company_ids: Callable[[], Iterable[str]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(engine, company_ids))
    return registry
