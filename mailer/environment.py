"""Jinja2 environments: a company's template directory first, then the packaged defaults.

HTML templates are autoescaped; text templates (`.txt`) are not. One environment is
cached per template directory, so Jinja's own template cache is reused across mails.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

_CENT = Decimal("0.01")


def money(amount: Decimal, currency: str) -> str:
    """`Decimal("1234.5"), "USD"` -> `"1,234.50 USD"` (two decimals, never a float)."""
    if isinstance(amount, float):
        raise TypeError("money must be Decimal, not float")
    exact = Decimal(amount).quantize(_CENT, rounding=ROUND_HALF_UP)
    return f"{exact:,.2f} {currency}"


def day(value: date) -> str:
    """`date(2024, 5, 1)` -> `"May 1, 2024"`."""
    return f"{value:%b} {value.day}, {value.year}"


def environment(template_dir: str = "") -> Environment:
    """The environment for a company's `template_dir` ("" = packaged templates only).

    Raises `ValueError` when a template directory is configured but does not exist: a
    typo must not silently fall back to the defaults.
    """
    if template_dir and not Path(template_dir).is_dir():
        raise ValueError(f"template_dir {template_dir!r} is not a directory")
    return _cached_environment(str(Path(template_dir).resolve()) if template_dir else "")


@lru_cache(maxsize=64)
def _cached_environment(template_dir: str) -> Environment:
    loaders = [FileSystemLoader(template_dir)] if template_dir else []
    loaders.append(PackageLoader("mailer", "templates"))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = money
    env.filters["day"] = day
    return env
