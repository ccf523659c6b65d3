"""A decoded msgspec struct back as the dict the standard JSON parser gives.

The connectors' fast decoders (`connectors/*/decode.py`) read answers into slim structs
naming only the fields arsync uses, while the normalizers read dicts (`raw.get`): the
fields a record had are kept, absent ones stay absent, nested structs and lists alike.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct


def plain(value: Any) -> Any:
    """`value` with every struct in it as a dict of the fields it had."""
    if isinstance(value, Struct):
        return {
            name: plain(item)
            for name in value.__struct_fields__
            if (item := getattr(value, name)) is not UNSET
        }
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
