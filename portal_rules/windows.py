"""Delivery windows: when automatic mail may be handed to the mail server.

A window is a set of weekdays plus a `from` and a `to` hour in the company's time zone.
`from` is the first hour in which mail may go out and `to` the last, both inclusive
(9 and 17 allow 09:00:00-17:59:59). When `from > to` the window runs overnight and
belongs to the day it opened (a Friday 22-5 window is open on Saturday at 03:00).

Windows follow local wall-clock time across DST changes: an instant is inside the window
when its local hour is, so the repeated hour of a fall-back day is inside twice, and a
window that starts in the skipped hour of a spring-forward day opens at the first
instant that exists at or after that local time (02:00 skipped -> opens 03:00). A window
whose every hour is skipped (2-2 on a 02:00 spring-forward day) does not open that day.

Pure functions in the style of arq's `next_cron`: `now` is always passed in, aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORKDAYS: frozenset[str] = frozenset(WEEKDAYS[:5])

# Looking back one day catches an overnight window opened yesterday; looking ahead two
# weeks finds the next opening even when this week's only day has no existing hour.
_SEARCH_DAYS = range(-1, 15)


@dataclass(frozen=True, slots=True)
class DeliveryWindow:
    """Days ("mon".."sun") and inclusive local hours in which automatic mail may go out."""

    days: frozenset[str]
    from_hour: int
    to_hour: int
    tz: str

    def __post_init__(self) -> None:
        unknown = set(self.days) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown delivery day(s): {sorted(unknown)}")
        if not self.days:
            raise ValueError("a delivery window needs at least one day")
        for name, hour in (("from_hour", self.from_hour), ("to_hour", self.to_hour)):
            if not 0 <= hour <= 23:
                raise ValueError(f"{name} must be within 0-23, got {hour}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.tz!r}") from None

    @property
    def overnight(self) -> bool:
        return self.from_hour > self.to_hour


def is_open(window: DeliveryWindow, now_utc: datetime) -> bool:
    """Whether automatic mail may be handed to the mail server at `now_utc`."""
    local = _require_aware(now_utc).astimezone(ZoneInfo(window.tz))
    today, hour = local.date(), local.hour
    if not window.overnight:
        return _weekday(today) in window.days and window.from_hour <= hour <= window.to_hour
    opened_today = _weekday(today) in window.days and hour >= window.from_hour
    opened_yesterday = _weekday(today - timedelta(days=1)) in window.days and hour <= window.to_hour
    return opened_today or opened_yesterday


def next_opening(window: DeliveryWindow, now_utc: datetime) -> datetime:
    """The first instant at or after `now_utc` inside the window (UTC, aware).

    Returns `now_utc` itself (converted to UTC) when the window is open.
    """
    now_utc = _require_aware(now_utc).astimezone(UTC)
    if is_open(window, now_utc):
        return now_utc
    zone = ZoneInfo(window.tz)
    local_today = now_utc.astimezone(zone).date()
    for delta in _SEARCH_DAYS:
        day = local_today + timedelta(days=delta)
        if _weekday(day) not in window.days:
            continue
        for opening in _openings(day, window.from_hour, zone):
            # An opening inside a DST gap can land past `to` (a 2-2 window on a 02:00
            # spring-forward day): that day's window is empty.
            if opening > now_utc and is_open(window, opening):
                return opening
    raise AssertionError("unreachable: a window with at least one day opens within 15 days")


def _openings(day: date, hour: int, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The instants `day` `hour`:00 opens a window at: the first, and on a fall-back day
    whose repeated span holds that wall time, its second occurrence too. A zone that falls
    back off the hour (Pacific/Chatham: 03:45 -> 02:45) closes a 3-3 window at the first
    03:45 and opens it again at the second 03:00."""
    first = _first_instant_at_or_after(day, hour, zone)
    second = datetime.combine(day, time(hour)).replace(tzinfo=zone, fold=1).astimezone(UTC)
    return (first, second) if second > first else (first,)


def _first_instant_at_or_after(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The earliest UTC instant whose local wall time is at or after `day` `hour`:00.

    An ambiguous wall time (fall-back) resolves to its first occurrence; a wall time that
    does not exist (spring-forward gap) resolves to the transition instant ending the gap.
    """
    wall = datetime.combine(day, time(hour))
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=1 maps to an instant before the gap, fold=0 to one after it. Bisect
    # over whole seconds for the transition: the first instant whose wall time reached `wall`.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _wall(timestamp: int, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).astimezone(zone).replace(tzinfo=None)


def _weekday(day: date) -> str:
    return WEEKDAYS[day.weekday()]


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required, got a naive one")
    return moment
