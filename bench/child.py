"""Run one sync in this process and print its summary with this process's peak RSS (JSON).

The benchmarks start it as a subprocess so the simulator (in the parent) does not count
towards the sync's memory. Mode "floor" only pulls: every page fetched, decoded and
normalized, nothing stored (what a sync cannot go below).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from connectors.offload import STATS_ENV
from connectors.registry import create_connector
from store.credentials import DbCredentials
from store.owners import worker_id
from sync.app import App
from sync.config import load_config
from sync.logging import configure_logging
from sync.runner import sync_one
from sync.settings import connector_settings


def peak_rss_mb() -> float:
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux carries that across fork+exec,
    so it would include the parent (which holds the simulator's whole company)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def floor(app: App, company_id: str) -> dict:
    """The decode-only floor: a full pull's pages fetched, decoded and normalized, nothing stored."""
    company = app.config.company(company_id)
    credentials = DbCredentials(app.engine, company.id, app.box)
    connector = create_connector(connector_settings(company, clock=lambda: datetime.now(UTC)), credentials)
    invoices = customers = 0
    for page in connector.pages(None, full=True):
        invoices += len(page.records) if page.entity == "invoices" else 0
        customers += len(page.records) if page.entity == "customers" else 0
    return {"status": "ok", "invoices": invoices, "customers": customers}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    config_path, company_id, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    config = load_config(config_path)
    configure_logging(config.log.level, config.log.format)  # as `arsync sync` does
    app = App.open(config)
    handle, stats = tempfile.mkstemp(prefix="arsync-offload-", suffix=".txt")
    os.close(handle)
    os.environ[STATS_ENV] = stats  # the page decoder's process, if the sync starts one
    started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    kernel = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    if mode == "floor":
        result = floor(app, company_id)
    else:
        summary = sync_one(
            app.engine, app.box, app.config.company(company_id), owner=worker_id(), full=mode == "full"
        )
        result = summary.as_json()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    helpers = [float(line) for line in Path(stats).read_text().split()]
    os.unlink(stats)
    figures = {
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "cpu_system_seconds": round(resource.getrusage(resource.RUSAGE_SELF).ru_stime - kernel, 3),  # of cpu
        "peak_rss_mb": peak_rss_mb(),
        # the page decoder's process (connectors.offload), when the pull started one
        "decoder_cpu_seconds": round(_children_cpu() - children, 3),
        "decoder_peak_rss_mb": max(helpers, default=None),
    }
    print(json.dumps(result | figures))


if __name__ == "__main__":
    main()
