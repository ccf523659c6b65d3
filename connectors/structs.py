"""A decoded msgspec struct back as the dict the standard JSON parser gives.

The connectors' fast decoders (`connectors/*/decode.py`) read answers into slim structs
naming only the fields arsync uses, while the normalizers read dicts (`raw.get`): the
fields a record had are kept, absent ones stay absent, nested structs and lists alike.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec


def plain(value: Any) -> Any:
    """`value` with every struct in it as a dict of the fields it had.

    msgspec's own conversion, in C: a struct's UNSET fields are left out, and the values
    the JSON gave (str, int, bool, None, exact Decimal, dicts and lists of them) come back
    as they are (Decimal kept, not turned into text). A third faster than walking the
    structs in Python (0.58 against 0.83 s for a 100k company's payments and credit memos).
    """
    return msgspec.to_builtins(value, builtin_types=(Decimal,))
