"""The sync tests' company: "acme", registered in a migrated store of each backend."""

from __future__ import annotations

import pytest

from store.companies import CompanyRow, register_companies


@pytest.fixture
def company(engine):
    register_companies(engine, [CompanyRow("acme", "Acme", "America/New_York", "scripted")])
    return engine
