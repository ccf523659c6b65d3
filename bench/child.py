"""Run one sync in this process and print its summary with this process's peak RSS (JSON).

The benchmarks start it as a subprocess so the simulator (in the parent) does not count
towards the sync's memory.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from sync.app import App
from sync.config import load_config
from sync.credentials import worker_id
from sync.runner import sync_one


def peak_rss_mb() -> float:
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux carries that across fork+exec,
    so it would include the parent (which holds the simulator's whole company)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    config_path, company_id, full = sys.argv[1], sys.argv[2], sys.argv[3] == "full"
    logging.disable(logging.WARNING)
    app = App.open(load_config(config_path))
    started = time.perf_counter()
    summary = sync_one(app.engine, app.box, app.config.company(company_id), owner=worker_id(), full=full)
    wall = time.perf_counter() - started
    result = summary.as_json() | {
        "wall_seconds": round(wall, 3),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
