"""Connector options (test and benchmark knobs from `ConnectorSettings.options`), checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from connectors.base import ConnectorError

T = TypeVar("T")


def parse_known(cls: type[T], options: Mapping[str, Any], system: str) -> T:
    """`cls(**options)`, refusing keys `cls` does not have (a typo must not pass silently)."""
    unknown = sorted(set(options) - {f.name for f in fields(cls)})
    if unknown:
        raise ConnectorError(f"unknown {system} connector option(s): {', '.join(unknown)}")
    return cls(**options)
