"""A calendar day as people type it for arsync: ISO 8601's YYYY-MM-DD, and only that.

`date.fromisoformat` alone also takes 20261204 and 2026-W49-5 (Python 3.11+), so a slip of
the keyboard would name some other day without a word; the CLI and the HTTP API share this.
"""

from __future__ import annotations

import re
from datetime import date

ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str) -> date:
    """The day `text` names; ValueError saying what is wrong otherwise."""
    if not ISO_DAY.fullmatch(text):
        raise ValueError("not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:  # 2026-02-30: the shape is right, the day does not exist
        raise ValueError(f"not a date: {exc}") from None
