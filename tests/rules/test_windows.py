"""Delivery windows, as tables of datetimes (UTC in, UTC out), including DST days.

America/New_York: spring forward Sun 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC);
fall back Sun 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC), 01:xx happens twice.
Australia/Sydney: fall back Sun 2026-04-05 03:00 AEDT -> 02:00 AEST (16:00 UTC on the 4th),
02:xx happens twice; spring forward Sun 2026-10-04 02:00 AEST -> 03:00 AEDT (16:00 UTC on the 3rd).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_rules.windows import (
    WEEKDAYS,
    WORKDAYS,
    DeliveryWindow,
    is_open,
    next_opening,
)

from .factories import utc

NY = "America/New_York"
SYD = "Australia/Sydney"

WEEKDAY_9_17 = DeliveryWindow(WORKDAYS, 9, 17, NY)
FRIDAY_NIGHT = DeliveryWindow(frozenset({"fri"}), 22, 5, NY)
SATURDAY_NIGHT = DeliveryWindow(frozenset({"sat"}), 22, 5, NY)
MONDAY_NOON = DeliveryWindow(frozenset({"mon"}), 12, 12, NY)
NY_SUNDAY_2_5 = DeliveryWindow(frozenset({"sun"}), 2, 5, NY)
NY_SUNDAY_2_2 = DeliveryWindow(frozenset({"sun"}), 2, 2, NY)
NY_SUNDAY_1_1 = DeliveryWindow(frozenset({"sun"}), 1, 1, NY)
SYD_SUNDAY_2_2 = DeliveryWindow(frozenset({"sun"}), 2, 2, SYD)
SYD_SUNDAY_2_4 = DeliveryWindow(frozenset({"sun"}), 2, 4, SYD)
# Samoa skipped Friday 2011-12-30 entirely (-10 -> +14): Friday 09:00 never happened, and
# the first existing instant after it is Saturday 00:00 local, still inside Friday's night.
APIA_FRIDAY_NIGHT = DeliveryWindow(frozenset({"fri"}), 9, 5, "Pacific/Apia")
# Chatham falls back off the hour (2026-04-05 03:45 +13:45 -> 02:45 +12:45): a 3-3 window
# closes at the first 03:45 and opens again at the second 03:00, fifteen minutes later.
CHATHAM_3_3 = DeliveryWindow(frozenset(WEEKDAYS), 3, 3, "Pacific/Chatham")


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        (WEEKDAY_9_17, "2026-06-01T12:59:59", False),  # Mon 08:59:59 EDT
        (WEEKDAY_9_17, "2026-06-01T13:00:00", True),  # Mon 09:00 EDT
        (WEEKDAY_9_17, "2026-06-01T21:59:59", True),  # Mon 17:59:59 EDT: `to` hour included
        (WEEKDAY_9_17, "2026-06-01T22:00:00", False),  # Mon 18:00 EDT
        (WEEKDAY_9_17, "2026-06-06T15:00:00", False),  # Sat 11:00 EDT
        (WEEKDAY_9_17, "2026-06-01T02:00:00", False),  # Sun 22:00 EDT, Monday in UTC
        (FRIDAY_NIGHT, "2026-05-16T01:59:59", False),  # Fri 21:59:59 EDT
        (FRIDAY_NIGHT, "2026-05-16T02:00:00", True),  # Fri 22:00 EDT
        (FRIDAY_NIGHT, "2026-05-16T07:00:00", True),  # Sat 03:00 EDT: Friday's window
        (FRIDAY_NIGHT, "2026-05-16T09:59:59", True),  # Sat 05:59:59 EDT
        (FRIDAY_NIGHT, "2026-05-16T10:00:00", False),  # Sat 06:00 EDT
        (FRIDAY_NIGHT, "2026-05-15T07:00:00", False),  # Fri 03:00 EDT: Thursday has no window
        (FRIDAY_NIGHT, "2026-05-17T02:00:00", False),  # Sat 22:00 EDT
        (MONDAY_NOON, "2026-06-01T16:00:00", True),  # Mon 12:00 EDT: one-hour window
        (MONDAY_NOON, "2026-06-01T16:59:59", True),  # Mon 12:59:59 EDT
        (MONDAY_NOON, "2026-06-01T17:00:00", False),  # Mon 13:00 EDT
        (NY_SUNDAY_2_5, "2026-03-08T06:59:59", False),  # 01:59:59 EST, just before the gap
        (NY_SUNDAY_2_5, "2026-03-08T07:00:00", True),  # 03:00 EDT, just after the gap
        (NY_SUNDAY_2_5, "2026-03-08T09:59:59", True),  # 05:59:59 EDT
        (NY_SUNDAY_2_5, "2026-03-08T10:00:00", False),  # 06:00 EDT
        (NY_SUNDAY_2_2, "2026-03-08T07:00:00", False),  # hour 2 never happens that day
        (NY_SUNDAY_1_1, "2026-11-01T05:30:00", True),  # 01:30 EDT, first time
        (NY_SUNDAY_1_1, "2026-11-01T06:30:00", True),  # 01:30 EST, repeated hour
        (NY_SUNDAY_1_1, "2026-11-01T07:00:00", False),  # 02:00 EST
        (SATURDAY_NIGHT, "2026-03-08T09:30:00", True),  # Sun 05:30 EDT, night shortened by DST
        (SATURDAY_NIGHT, "2026-03-08T10:00:00", False),  # Sun 06:00 EDT
        (SATURDAY_NIGHT, "2026-11-01T10:59:59", True),  # Sun 05:59:59 EST, night lengthened
        (SATURDAY_NIGHT, "2026-11-01T11:00:00", False),  # Sun 06:00 EST
        (SYD_SUNDAY_2_2, "2026-04-04T15:00:00", True),  # 02:00 AEDT
        (SYD_SUNDAY_2_2, "2026-04-04T16:30:00", True),  # 02:30 AEST, repeated hour
        (SYD_SUNDAY_2_2, "2026-04-04T17:00:00", False),  # 03:00 AEST
        (SYD_SUNDAY_2_4, "2026-10-03T15:59:59", False),  # 01:59:59 AEST, before the gap
        (SYD_SUNDAY_2_4, "2026-10-03T16:00:00", True),  # 03:00 AEDT, after the gap
    ],
    ids=[
        "weekday-before-from",
        "weekday-at-from",
        "weekday-last-second-of-to-hour",
        "weekday-after-to",
        "saturday-not-a-delivery-day",
        "local-sunday-though-utc-monday",
        "overnight-before-opening",
        "overnight-opening",
        "overnight-saturday-3am-belongs-to-friday",
        "overnight-last-second",
        "overnight-closed-after-to",
        "overnight-morning-of-the-opening-day-is-closed",
        "overnight-saturday-evening-not-a-day",
        "one-hour-window-start",
        "one-hour-window-last-second",
        "one-hour-window-over",
        "ny-spring-forward-before-gap",
        "ny-spring-forward-opens-after-skipped-hour",
        "ny-spring-forward-last-second",
        "ny-spring-forward-closed",
        "ny-spring-forward-window-of-only-skipped-hour",
        "ny-fall-back-first-1am",
        "ny-fall-back-repeated-1am",
        "ny-fall-back-after-repeat",
        "ny-overnight-over-spring-forward",
        "ny-overnight-over-spring-forward-closed",
        "ny-overnight-over-fall-back",
        "ny-overnight-over-fall-back-closed",
        "sydney-fall-back-first-2am",
        "sydney-fall-back-repeated-2am",
        "sydney-fall-back-after-repeat",
        "sydney-spring-forward-before-gap",
        "sydney-spring-forward-opens-after-gap",
    ],
)
def test_is_open(window: DeliveryWindow, now: str, expected: bool) -> None:
    assert is_open(window, utc(now)) is expected


@pytest.mark.parametrize(
    ("window", "now", "expected"),
    [
        (WEEKDAY_9_17, "2026-06-01T12:00:00", "2026-06-01T13:00:00"),
        (WEEKDAY_9_17, "2026-06-01T14:15:00", "2026-06-01T14:15:00"),
        (WEEKDAY_9_17, "2026-06-01T22:00:00", "2026-06-02T13:00:00"),
        (WEEKDAY_9_17, "2026-06-05T22:00:00", "2026-06-08T13:00:00"),
        (WEEKDAY_9_17, "2026-03-06T23:00:00", "2026-03-09T13:00:00"),
        (WEEKDAY_9_17, "2026-10-30T23:00:00", "2026-11-02T14:00:00"),
        (FRIDAY_NIGHT, "2026-05-15T03:00:00", "2026-05-16T02:00:00"),
        (FRIDAY_NIGHT, "2026-05-16T07:00:00", "2026-05-16T07:00:00"),
        (FRIDAY_NIGHT, "2026-05-16T10:00:00", "2026-05-23T02:00:00"),
        (MONDAY_NOON, "2026-06-01T17:00:00", "2026-06-08T16:00:00"),
        (NY_SUNDAY_2_5, "2026-03-07T12:00:00", "2026-03-08T07:00:00"),
        (NY_SUNDAY_2_5, "2026-03-01T12:00:00", "2026-03-08T07:00:00"),
        (NY_SUNDAY_2_2, "2026-03-07T12:00:00", "2026-03-15T06:00:00"),
        (NY_SUNDAY_1_1, "2026-10-31T12:00:00", "2026-11-01T05:00:00"),
        (NY_SUNDAY_1_1, "2026-11-01T07:00:00", "2026-11-08T06:00:00"),
        (SYD_SUNDAY_2_2, "2026-04-04T12:00:00", "2026-04-04T15:00:00"),
        (SYD_SUNDAY_2_2, "2026-04-04T17:00:00", "2026-04-11T16:00:00"),
        (SYD_SUNDAY_2_4, "2026-10-03T12:00:00", "2026-10-03T16:00:00"),
        (SYD_SUNDAY_2_2, "2026-10-03T12:00:00", "2026-10-10T15:00:00"),
        (APIA_FRIDAY_NIGHT, "2011-12-29T12:00:00", "2011-12-30T10:00:00"),
        (CHATHAM_3_3, "2026-04-04T14:05:00", "2026-04-04T14:15:00"),
        (CHATHAM_3_3, "2026-04-04T13:20:00", "2026-04-04T13:20:00"),
    ],
    ids=[
        "weekday-morning-waits-for-9",
        "open-returns-now",
        "weekday-evening-waits-for-tomorrow",
        "friday-evening-waits-for-monday",
        "weekend-across-ny-spring-forward-(9-EDT-is-13-UTC)",
        "weekend-across-ny-fall-back-(9-EST-is-14-UTC)",
        "overnight-waits-for-friday-22",
        "overnight-open-saturday-3am-returns-now",
        "overnight-closed-waits-a-week",
        "one-hour-window-waits-a-week",
        "ny-window-at-skipped-2am-opens-at-3am",
        "ny-a-week-ahead-still-opens-at-3am-edt",
        "ny-window-of-only-skipped-hour-opens-next-sunday",
        "ny-fall-back-opens-at-first-1am",
        "ny-fall-back-after-repeat-waits-a-week-(1-EST)",
        "sydney-fall-back-opens-at-first-2am",
        "sydney-fall-back-after-window-waits-a-week-(2-AEST)",
        "sydney-window-at-skipped-2am-opens-at-3am",
        "sydney-window-of-only-skipped-hour-opens-next-sunday",
        "apia-skipped-friday-window-opens-at-first-existing-instant",
        "chatham-falls-back-off-the-hour-reopens-at-the-second-3am",
        "chatham-first-3am-pass-is-open",
    ],
)
def test_next_opening(window: DeliveryWindow, now: str, expected: str) -> None:
    opening = next_opening(window, utc(now))
    assert opening == utc(expected)
    assert opening.utcoffset() == timedelta(0)


def test_next_opening_accepts_any_aware_datetime_and_answers_in_utc() -> None:
    paris_evening = datetime(2026, 6, 1, 23, 30, tzinfo=timezone(timedelta(hours=2)))
    opening = next_opening(WEEKDAY_9_17, paris_evening)  # 17:30 EDT Monday: open
    assert opening == utc("2026-06-01T21:30:00")
    assert opening.tzinfo is UTC


@pytest.mark.parametrize(
    ("days", "from_hour", "to_hour", "tz", "error"),
    [
        (frozenset({"monday"}), 9, 17, NY, "unknown delivery day"),
        (frozenset(), 9, 17, NY, "at least one day"),
        (WORKDAYS, 24, 17, NY, "from_hour must be within 0-23"),
        (WORKDAYS, 9, -1, NY, "to_hour must be within 0-23"),
        (WORKDAYS, 9, 17, "Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
    ],
    ids=["unknown-day", "no-days", "from-hour-24", "negative-to-hour", "unknown-zone"],
)
def test_invalid_windows_are_refused(days, from_hour, to_hour, tz, error) -> None:
    with pytest.raises(ValueError, match=error):
        DeliveryWindow(days, from_hour, to_hour, tz)


@pytest.mark.parametrize(
    "call",
    [lambda now: is_open(WEEKDAY_9_17, now), lambda now: next_opening(WEEKDAY_9_17, now)],
    ids=["is_open", "next_opening"],
)
def test_naive_datetimes_are_refused(call) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(datetime(2026, 6, 1, 12, 0))


ZONES = [
    "UTC",
    NY,
    SYD,
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kathmandu",  # +05:45
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # transitions at local midnight
    "America/St_Johns",  # -03:30 / -02:30
]

windows = st.builds(
    DeliveryWindow,
    days=st.frozensets(st.sampled_from(WEEKDAYS), min_size=1),
    from_hour=st.integers(0, 23),
    to_hour=st.integers(0, 23),
    tz=st.sampled_from(ZONES),
)
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)
QUARTER = timedelta(minutes=15)


@settings(max_examples=300, deadline=None)
@given(window=windows, now=instants)
def test_next_opening_is_the_first_open_instant_not_before_now(window, now) -> None:
    opening = next_opening(window, now)
    assert opening >= now
    assert is_open(window, opening)
    # Every zone above changes offset on a quarter hour, so a window can only open on a
    # UTC quarter hour: checking those between now and the opening proves none was missed.
    moment = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0) + QUARTER
    while moment < opening:
        assert not is_open(window, moment), moment
        moment += QUARTER
