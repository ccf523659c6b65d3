"""`./dev bench [--quick] [SECTION ...]`: measure SPEC section 8's bars and print them.

Sections: full, local, incremental, latency, mail, startup, health, http, scale (all by default).
Results are printed as a table and written to bench/results/latest.json with the machine they came
from and, per section, a calibration loop's time before and after it (the VM's speed drifts).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from sync.logging import configure_logging

SECTIONS = ("full", "local", "incremental", "latency", "mail", "startup", "health", "http", "scale")


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def calibration() -> float:
    """Seconds for a fixed pure-Python loop (10^7 additions), the best of three: this VM's
    speed drifts by up to 2x over hours, so each section records it before and after."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def full(sizes) -> list[dict]:
    from bench import sync

    # Xero's 100k pull is rate-bound (three minutes a run): one run of each
    largest = {"quickbooks": sync.FULL_RUNS, "xero": 1}
    rows = [
        sync.full_sync(kind, n, runs=largest[kind] if n == sizes[-1] else 1)
        for n in sizes
        for kind in ("quickbooks", "xero")
    ]
    pg = os.environ.get("ARSYNC_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        rows.append(sync.full_sync("quickbooks", sizes[-1], lambda: _fresh_schema(pg), runs=sync.FULL_RUNS))
    except Exception as exc:  # PostgreSQL is optional for the bench
        rows.append({"store": "postgresql", "error": f"{type(exc).__name__}: {exc}"[:200]})
    return rows


def local(sizes) -> list[dict]:
    from bench import local as bench_local

    pages = bench_local.fetch_pages(sizes[-1])
    out = [bench_local.run(pages, write_only=only) for only in (False, True)]
    # SPEC section 8's bar as it is written, "100,000 invoices": the first release's company
    # (customers and invoices), without the payments and credit memos the second one adds
    invoices = [(entity, body) for entity, body in pages if entity in ("customers", "invoices")]
    out += [bench_local.run(invoices, write_only=only) for only in (False, True)]
    pg = os.environ.get("ARSYNC_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    for only in (False, True):
        try:
            out.append(bench_local.run(pages, _fresh_schema(pg), write_only=only))
        except Exception as exc:  # PostgreSQL is optional for the bench
            out.append({"store": "postgresql", "error": f"{type(exc).__name__}: {exc}"[:200]})
    return out


def _fresh_schema(url: str) -> str:
    from sqlalchemy import create_engine, text

    schema = f"bench_{os.getpid()}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    atexit.register(_drop_schema, engine, schema)  # the bench leaves nothing behind
    return f"{url}?options=-csearch_path%3D{schema}"


def _drop_schema(engine, schema: str) -> None:
    from sqlalchemy import text

    with engine.connect() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def incremental(sizes) -> list[dict]:
    from bench import sync

    return [sync.incremental_sync(kind, n) for n in sizes for kind in ("quickbooks", "xero")]


def latency(sizes) -> list[dict]:
    from bench import sync

    kinds = ("quickbooks", "xero")
    rows = [sync.latency_sync(kind, sizes[0], seconds) for seconds in (0.15, 1.0) for kind in kinds]
    # QuickBooks at the large size too: its 203 requests need 21 whole rounds of latency where
    # the SPEC's bound counts 20.3 (at 10k, 3 rounds against 2.1). Xero's large pull is bound
    # by its 60 calls a minute, not by latency (the full section's floor shows it at the cap).
    return rows + [sync.latency_sync("quickbooks", sizes[-1], seconds) for seconds in (0.15, 1.0)]


def mail(_sizes) -> list[dict]:
    from bench import mail as bench_mail

    return [bench_mail.run(10_000)]


def startup(_sizes) -> list[dict]:
    from bench import startup as bench_startup

    return bench_startup.run()


def health(_sizes) -> list[dict]:
    from bench import health as bench_health

    out = [bench_health.run()]
    pg = os.environ.get("ARSYNC_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        out.append(bench_health.run(store_url=_fresh_schema(pg)))
    except Exception as exc:  # PostgreSQL is optional for the bench
        out.append({"store": "postgresql", "error": f"{type(exc).__name__}: {exc}"[:200]})
    return out


def scale(_sizes) -> list[dict]:
    """1,000 companies, 3 workers on PostgreSQL, several intervals (SPEC section 11)."""
    from bench import scale as bench_scale

    pg = os.environ.get("ARSYNC_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    sizes = os.environ.get("ARSYNC_BENCH_SCALE", "1000,3,3,3").split(",")
    companies, workers, interval, intervals = (int(x) for x in sizes)
    return [bench_scale.run(pg, companies, workers, interval, intervals)]  # its own schema, dropped


def http(sizes) -> list[dict]:
    from bench import http as bench_http

    return bench_http.run(customers=sizes[0])


def main() -> None:
    parser = argparse.ArgumentParser(prog="./dev bench", description=__doc__)
    parser.add_argument("sections", nargs="*", metavar="SECTION", help=f"any of {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="1k/10k companies instead of 10k/100k")
    args = parser.parse_args()
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r} (choose from {', '.join(SECTIONS)})")
    configure_logging("warning")
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    sizes = (1_000, 10_000) if args.quick else (10_000, 100_000)
    target = Path(__file__).parent / "results" / ("quick.json" if args.quick else "latest.json")
    results = json.loads(target.read_text()) if target.exists() else {}  # re-run sections replace theirs
    results |= {"machine": machine(), "when": datetime.now(UTC).isoformat(timespec="seconds"), "sizes": sizes}
    for section in args.sections or SECTIONS:
        before = calibration()
        rows = globals()[section](sizes)
        results[section] = rows
        speed = {"before": before, "after": calibration()}
        results.setdefault("calibration_seconds", {})[section] = speed
        print(f"\n== {section} (calibration loop {speed['before']} s before, {speed['after']} s after)")
        for row in rows:
            print("  " + ", ".join(f"{k}={v}" for k, v in row.items() if k != "requests_by_endpoint"))
        # after each section, so a section that fails keeps the figures of the ones before it
        target.parent.mkdir(exist_ok=True)
        target.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten to {target}")


if __name__ == "__main__":
    main()
