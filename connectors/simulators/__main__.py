"""Run a simulator by hand: `python -m connectors.simulators quickbooks --port 8081 ...`.

Prints the base URL, the company id (realm/tenant) and a minted token pair, then serves
until Ctrl-C. Each simulator registers one `build` function in `SIMULATORS`.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from datetime import date

from connectors.simulators.base import SimServer
from connectors.simulators.generator import generate_company, sample_company
from connectors.simulators.model import SimCompany
from connectors.simulators.xero import cli_simulator as _xero_simulator


def _company(kind: str, args: argparse.Namespace) -> SimCompany:
    today = date.fromisoformat(args.today) if args.today else date.today()
    if args.sample:
        return sample_company(kind, today=today)  # type: ignore[arg-type]
    return generate_company(
        kind,  # type: ignore[arg-type]
        seed=args.seed,
        customers=args.customers,
        invoices=args.invoices,
        today=today,
    )


def _quickbooks(args: argparse.Namespace) -> SimServer:
    from connectors.simulators.quickbooks import QuickBooksSimulator

    return QuickBooksSimulator(
        _company("quickbooks", args),
        latency=args.latency,
        per_minute=args.per_minute or 500,
        concurrency=args.concurrency or 10,
    )


# kind -> build(args) -> an unstarted simulator with `tokens` and one company.
SIMULATORS: dict[str, Callable[[argparse.Namespace], SimServer]] = {
    "quickbooks": _quickbooks,
    "xero": lambda args: _xero_simulator(args, _company("xero", args)),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m connectors.simulators")
    parser.add_argument("kind", choices=sorted(SIMULATORS))
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--today", help="YYYY-MM-DD the generated history ends at")
    parser.add_argument("--sample", action="store_true", help="the small hand-readable company")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--per-minute", type=int, help="requests per minute per company")
    parser.add_argument("--concurrency", type=int, help="requests in flight per company")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sim = SIMULATORS[args.kind](args)
    sim.port = args.port
    if hasattr(sim, "prerender"):
        sim.prerender()  # render every record once now, not during the first pull
    url = sim.start()
    company_ids = getattr(sim, "realms", None) or getattr(sim, "tenants", None) or []
    access, refresh = sim.tokens.issue()  # type: ignore[attr-defined]
    print(f"{args.kind} simulator at {url}", flush=True)
    for label in ("api_url", "token_url", "discovery_url"):
        if hasattr(sim, label):
            print(f"{label + ':':14} {getattr(sim, label)}")
    for company_id in company_ids:
        print(f"company id:    {company_id}")
    print(f"access token:  {access}")
    print(f"refresh token: {refresh}")
    print(f"client id/secret: {sim.tokens.client_id} / {sim.tokens.client_secret}")  # type: ignore[attr-defined]
    print("Ctrl-C to stop", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
