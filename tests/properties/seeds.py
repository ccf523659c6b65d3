"""Which seeds a differential test runs: its fixed CI seeds, or many from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def differential_cases(prefix: str, ci_seeds: Mapping[str, Sequence[int]]) -> list[tuple[str, int, str]]:
    """(system, seed, store) cases: each system's `ci_seeds` on SQLite and its first on
    PostgreSQL; with `{prefix}_SEEDS=N`, seeds 0..N-1 of each system on the stores
    `{prefix}_BACKENDS` names (default SQLite)."""
    many = int(os.environ.get(f"{prefix}_SEEDS", "0"))
    backends = os.environ.get(f"{prefix}_BACKENDS", "sqlite").split(",")
    cases = []
    for system, seeds in ci_seeds.items():
        for seed in range(many) if many else seeds:
            cases.extend((system, seed, backend) for backend in backends)
        if not many:
            cases.append((system, seeds[0], "postgres"))
    return cases
