"""In-memory companies for benchmarks that measure arsync's own work, not HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from portal_rules.records import CustomerRecord, InvoiceRecord, Page


def customers(n: int, seed: int = 1) -> list[CustomerRecord]:
    rng = random.Random(seed)
    return [
        CustomerRecord(str(i), f"Customer {i} Müller", rng.random() > 0.03, (f"ap{i}@customer{i}.example",))
        for i in range(1, n + 1)
    ]


def invoices(n: int, n_customers: int, today: date, seed: int = 2) -> list[InvoiceRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        total = Decimal(rng.randint(1000, 500000)).scaleb(-2)
        balance = total if rng.random() < 0.6 else Decimal("0.00")
        issued = today - timedelta(days=rng.randint(0, 120))
        out.append(
            InvoiceRecord(
                str(100000 + i),
                str(rng.randint(1, n_customers)),
                f"INV-{i}",
                issued,
                issued + timedelta(days=30),
                "USD",
                total,
                balance,
                source_sent=rng.random() > 0.1,
                voided=rng.random() < 0.01,
                updated_at=datetime.combine(issued, datetime.min.time(), UTC),
            )
        )
    return out


@dataclass
class MemorySource:
    """Yields prepared records in pages of `page_size`, customers then invoices (a full pull)."""

    customer_records: list[CustomerRecord]
    invoice_records: list[InvoiceRecord]
    page_size: int = 1000
    kind: str = "memory"

    def pages(self, cursor: dict | None, *, full: bool = False) -> Iterator[Page]:
        size = self.page_size
        for start in range(0, len(self.customer_records), size):
            yield Page(
                "customers",
                tuple(self.customer_records[start : start + size]),
                cursor={"c": start + size},
                api_calls=1,
            )
        last = max(len(self.invoice_records) - 1, 0) // size * size
        for start in range(0, max(len(self.invoice_records), 1), size):
            yield Page(
                "invoices",
                tuple(self.invoice_records[start : start + size]),
                cursor={"i": start + size},
                api_calls=1,
                full_sync_complete=start == last,
            )
