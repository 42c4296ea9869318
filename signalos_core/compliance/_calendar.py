"""Day boundaries in a named IANA zone (DST-correct) and business-day windows with holiday calendars.

A firm's trading day starts at a wall-clock time in its zone (FTMO: 00:00 Europe/Prague; Topstep: 17:00
America/Chicago). Offsets are never stored: the boundary for a local date is computed with :mod:`zoneinfo`, so
the night the clocks change still resets at local midnight (23:00Z in autumn for Prague, not 22:00Z).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signalos_core._errors import EvaluationError

__all__ = ["DayClock", "business_days_back", "parse_hhmm", "zone"]

_UTC = dt.UTC


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The :class:`ZoneInfo` for an IANA name; a bad name raises :class:`EvaluationError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise EvaluationError(f"unknown IANA timezone {name!r}", field="timezone") from exc


def parse_hhmm(text: str) -> dt.time:
    """``"17:00"`` → ``time(17, 0)``."""
    hours, _, minutes = text.partition(":")
    return dt.time(int(hours), int(minutes))


def _wall(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The instant of local wall time ``day at`` in ``tz``, normalised through UTC.

    A wall time inside a spring-forward gap does not exist; the UTC round trip moves it forward, which is
    what a broker's clock does.
    """
    local = dt.datetime.combine(day, at, tzinfo=tz)
    return local.astimezone(_UTC).astimezone(tz)


class DayClock:
    """Trading-day arithmetic for one boundary (zone + wall time)."""

    __slots__ = ("_cache", "_fmt_cache", "_window", "at", "label", "tz", "tz_name")

    def __init__(self, tz_name: str, at: str) -> None:
        self.tz_name = tz_name
        self.tz = zone(tz_name)
        self.at = parse_hhmm(at)
        self.label = f"{at} {tz_name}"
        self._cache: dict[dt.date, dt.datetime] = {}
        self._fmt_cache: dict[dt.datetime, str] = {}
        # The last trading day seen, as [start, end): most calls fall in it, and a comparison is far cheaper
        # than a zone conversion. A tuple is replaced atomically, so concurrent readers stay consistent.
        self._window: tuple[dt.datetime, dt.datetime, dt.datetime] | None = None

    def boundary_on(self, day: dt.date) -> dt.datetime:
        """The boundary instant on local date ``day``."""
        hit = self._cache.get(day)
        if hit is None:
            hit = _wall(day, self.at, self.tz)
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[day] = hit
        return hit

    def current_start(self, when: dt.datetime) -> dt.datetime:
        """Start of the trading day containing ``when`` (the latest boundary at or before it)."""
        window = self._window
        if window is not None and window[0] <= when < window[1]:
            return window[2]
        local_day = when.astimezone(self.tz).date()
        start = self.boundary_on(local_day)
        if start > when:
            start = self.boundary_on(local_day - dt.timedelta(days=1))
        end = self.boundary_on(start.astimezone(self.tz).date() + dt.timedelta(days=1))
        # UTC copies: comparing against a ZoneInfo-aware datetime costs a zone lookup per comparison.
        self._window = (start.astimezone(_UTC), end.astimezone(_UTC), start)
        return start

    def utc(self, start: dt.datetime) -> dt.datetime:
        """``start`` in UTC (from the window cache when it is the current day's start): comparisons between
        datetimes in different zones cost a zone lookup each, UTC-to-UTC comparisons do not."""
        window = self._window
        if window is not None and window[2] is start:
            return window[0]
        return start.astimezone(_UTC)

    def next_start(self, when: dt.datetime) -> dt.datetime:
        """The first boundary strictly after ``when`` (when a day lock lifts)."""
        start = self.current_start(when)
        return self.boundary_on(start.astimezone(self.tz).date() + dt.timedelta(days=1))

    def trading_day(self, when: dt.datetime) -> dt.date:
        """The trading date of ``when``.

        A day that starts before noon is named by its start date (00:00 → that date); one that starts in the
        afternoon or evening is named by the date it ends on (Topstep's 17:00 CT session is the next day's).
        """
        start = self.current_start(when).astimezone(self.tz).date()
        return start if self.at < dt.time(12, 0) else start + dt.timedelta(days=1)

    def fmt(self, when: dt.datetime) -> str:
        """``2026-05-12 00:00 Europe/Prague`` for explanations (cached: day starts repeat on every check)."""
        hit = self._fmt_cache.get(when)
        if hit is None:
            hit = f"{when.astimezone(self.tz):%Y-%m-%d %H:%M} {self.tz_name}"
            if len(self._fmt_cache) > 4096:
                self._fmt_cache.clear()
            self._fmt_cache[when] = hit
        return hit


def business_days_back(end: dt.date, count: int, holidays: Iterable[dt.date]) -> list[dt.date]:
    """The ``count`` business days ending at ``end`` (inclusive), oldest first, skipping weekends and holidays."""
    off = set(holidays)
    out: list[dt.date] = []
    day = end
    while len(out) < count:
        if day.weekday() < 5 and day not in off:
            out.append(day)
        day -= dt.timedelta(days=1)
    out.reverse()
    return out
