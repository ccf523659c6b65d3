"""Start-up time of the CLI: `arsync --help` and `arsync status` (SPEC section 13: under 0.5 s).

Each command runs as a fresh process, as a user types it: `hyperfine` measures it when
installed (warm-up runs first, so the page cache and .pyc files are warm), otherwise a
plain loop of subprocesses does. `status` reads a migrated SQLite store with one company
whose client secret is deliberately unset: status never needs it.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.workdirs import scratch_dir

BAR_SECONDS = 0.5
RUNS = 10

CONFIG = """\
[store]
url = "sqlite:///{db}"

[[companies]]
id = "acme"
name = "Acme"
[companies.connection]
kind = "quickbooks"
realm_id = "1"
client_secret_env = "ARSYNC_BENCH_UNSET_SECRET"
"""


# As a user's shell runs it: an environment that keeps Python from writing bytecode (as some
# CI shells set) would make every measured run compile arsync's modules again.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run() -> list[dict]:
    workdir = scratch_dir("arsync-bench-startup-")
    config = workdir / "arsync.toml"
    config.write_text(CONFIG.format(db=workdir / "arsync.db"))
    arsync = [sys.executable, "-m", "sync", "--config", str(config)]
    subprocess.run([*arsync, "db", "upgrade"], check=True, capture_output=True)
    return [
        _measure(name, [*arsync, *args]) for name, args in (("--help", ["--help"]), ("status", ["status"]))
    ]


def _measure(name: str, argv: list[str]) -> dict:
    check = subprocess.run(argv, capture_output=True, text=True, env=ENV)
    if check.returncode != 0:
        return {"command": f"arsync {name}", "error": check.stderr.strip()[-200:]}
    tool = "hyperfine" if shutil.which("hyperfine") else "loop"
    seconds, cpu = _hyperfine(argv) if tool == "hyperfine" else _loop(argv)
    median = statistics.median(seconds)
    return {
        "command": f"arsync {name}",
        "tool": tool,
        "runs": len(seconds),
        "median_seconds": round(median, 3),
        "min_seconds": round(min(seconds), 3),
        # CPU (user + system) per run: on a busy shared machine a steadier figure than wall time
        "cpu_seconds": round(cpu, 3),
        "load_average": round(os.getloadavg()[0], 1),
        "bar_seconds": BAR_SECONDS,
        "ok": median < BAR_SECONDS,
    }


def _hyperfine(argv: list[str]) -> tuple[list[float], float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [
                "hyperfine",
                "--warmup",
                "2",
                "--runs",
                str(RUNS),
                "--style",
                "none",
                "-N",
                "--export-json",
                out.name,
                subprocess.list2cmdline(argv),
            ],
            check=True,
            capture_output=True,
            env=ENV,
        )
        result = json.loads(Path(out.name).read_text())["results"][0]
        return result["times"], result["user"] + result["system"]


def _loop(argv: list[str]) -> tuple[list[float], float]:
    seconds, cpu = [], []
    for _ in range(RUNS + 2):
        before = os.times()
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=ENV)
        seconds.append(time.perf_counter() - start)
        after = os.times()
        cpu.append(sum(after[2:4]) - sum(before[2:4]))  # children's user + system
    return seconds[2:], statistics.mean(cpu[2:])  # the first two warm the caches, like hyperfine's warm-up
