from __future__ import annotations

import pytest

from portal_rules.customers import portal_visible_customer, should_import

from .factories import customer


@pytest.mark.parametrize(
    ("active", "import_inactive", "stored", "expected"),
    [
        (True, False, False, True),
        (False, False, False, False),
        (False, True, False, True),
        (False, False, True, True),
        (True, True, True, True),
    ],
    ids=[
        "active-imported",
        "new-inactive-skipped-by-default",
        "new-inactive-imported-by-setting",
        "stored-customer-turned-inactive-kept-to-record-it",
        "active-stored-with-setting",
    ],
)
def test_should_import(active: bool, import_inactive: bool, stored: bool, expected: bool) -> None:
    assert should_import(active, import_inactive, stored=stored) is expected


@pytest.mark.parametrize(
    ("facts", "import_inactive", "expected"),
    [
        (customer(active=True), False, True),
        (customer(active=False), False, False),
        (customer(active=False), True, True),
        (customer(active=True, deleted=True), True, False),
    ],
    ids=[
        "active-visible",
        "turned-inactive-setting-off-hidden",
        "inactive-setting-on-visible",
        "deleted-never-visible",
    ],
)
def test_portal_visible_customer(facts, import_inactive: bool, expected: bool) -> None:
    assert portal_visible_customer(facts, import_inactive) is expected
