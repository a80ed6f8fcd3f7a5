"""Timer schedules as the Functions host reads them: six-field NCRONTAB or a TimeSpan interval.

``{second} {minute} {hour} {day} {month} {day-of-week}``, each field ``*``, a number, a range
``a-b``, a list ``a,b``, a step ``*/n``, ``a-b/n`` or ``a/n`` (``a`` to the field's maximum);
months and days of the week also by name (``Jan``, ``Mon``; any case, any prefix of the English
name, as NCrontab matches them), day-of-week 0-6 with 0 = Sunday. The fields must all match, day
of month and day of week included (NCrontab's rule, unlike Vixie cron's "either"). The other form
is a TimeSpan ``[d.]hh:mm[:ss[.fffffff]]``: a fixed interval from the previous occurrence. All times
are UTC.
"""

from __future__ import annotations

import bisect
import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Every valid month/day pair falls on every day of the week within one 400-year Gregorian
# cycle, so a schedule that passes parsing always has an occurrence inside this window.
_SEARCH_YEARS = 400

_TIMESPAN = re.compile(
    r"^(?:(?P<days>[0-9]+)\.)?(?P<hours>[0-9]{1,2}):(?P<minutes>[0-9]{1,2})"
    r"(?::(?P<seconds>[0-9]{1,2})(?:\.(?P<fraction>[0-9]{1,7}))?)?$"
)
_NUMBER = re.compile(r"^[0-9]+$")
_NAME = re.compile(r"^[A-Za-z]+$")
_FIELD_ORDER = "{second} {minute} {hour} {day} {month} {day-of-week}"


class ScheduleError(ValueError):
    """The text is not a schedule the Functions host would accept; the message says why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


# Spelled out rather than taken from ``calendar.month_name``, which follows the process locale.
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 6, _DAY_NAMES),
)
# February counts 29 days: a schedule for the 29th is valid, it just runs in leap years.
_LONGEST_MONTH = {month: calendar.monthrange(2024, month)[1] for month in range(1, 13)}


def as_utc(instant: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


@dataclass(frozen=True)
class CronSchedule:
    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    days_of_week: frozenset[int]

    def next_after(self, instant: datetime) -> datetime:
        """The first occurrence strictly after ``instant`` (UTC, whole seconds)."""
        moment = as_utc(instant).replace(microsecond=0) + timedelta(seconds=1)
        last_year = moment.year + _SEARCH_YEARS
        while moment.year <= last_year:
            if moment.month not in self.months:
                moment = self._next_month(moment)
                continue
            # Python counts Monday as 0, NCRONTAB counts Sunday as 0.
            weekday = (moment.weekday() + 1) % 7
            if moment.day not in self.days or weekday not in self.days_of_week:
                moment = _midnight(moment) + timedelta(days=1)
                continue
            hour = _first_from(self.hours, moment.hour)
            if hour is None:
                moment = _midnight(moment) + timedelta(days=1)
                continue
            if hour != moment.hour:
                moment = moment.replace(hour=hour, minute=0, second=0)
            minute = _first_from(self.minutes, moment.minute)
            if minute is None:
                moment = moment.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if minute != moment.minute:
                moment = moment.replace(minute=minute, second=0)
            second = _first_from(self.seconds, moment.second)
            if second is None:
                moment = moment.replace(second=0) + timedelta(minutes=1)
                continue
            return moment.replace(second=second)
        raise ScheduleError(f"{self.text!r} has no occurrence within {_SEARCH_YEARS} years")

    def _next_month(self, moment: datetime) -> datetime:
        month = _first_from(self.months, moment.month + 1)
        if month is None:
            return datetime(moment.year + 1, self.months[0], 1, tzinfo=UTC)
        return datetime(moment.year, month, 1, tzinfo=UTC)


@dataclass(frozen=True)
class IntervalSchedule:
    text: str
    interval: timedelta

    def next_after(self, instant: datetime) -> datetime:
        return as_utc(instant) + self.interval


Schedule = CronSchedule | IntervalSchedule


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0)


def _first_from(values: tuple[int, ...], start: int) -> int | None:
    index = bisect.bisect_left(values, start)
    return values[index] if index < len(values) else None


def parse_schedule(text: str) -> Schedule:
    """Parse a timer schedule; ScheduleError says what is wrong with it."""
    stripped = text.strip()
    if not stripped:
        raise ScheduleError("the schedule is empty")
    parts = stripped.split()
    if len(parts) == 1 and ":" in stripped:
        return _parse_timespan(stripped)
    if len(parts) != len(_FIELDS):
        raise ScheduleError(
            f"expected six NCRONTAB fields {_FIELD_ORDER} or a TimeSpan like 00:05:00,"
            f" got {len(parts)} field(s)"
        )
    fields = [_parse_field(spec, part) for spec, part in zip(_FIELDS, parts, strict=True)]
    seconds, minutes, hours, days, months, days_of_week = fields
    if not any(day <= _LONGEST_MONTH[month] for month in months for day in days):
        raise ScheduleError("the day and month fields never match a real date")
    return CronSchedule(
        text=stripped,
        seconds=tuple(sorted(seconds)),
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=tuple(sorted(months)),
        days_of_week=frozenset(days_of_week),
    )


def _parse_timespan(text: str) -> IntervalSchedule:
    match = _TIMESPAN.match(text)
    if match is None:
        raise ScheduleError(f"{text!r} is not a TimeSpan like 00:05:00 or 1.00:00:00")
    hours, minutes, seconds = (int(match.group(g) or 0) for g in ("hours", "minutes", "seconds"))
    # .NET's TimeSpan.Parse refuses these rather than carrying them over.
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ScheduleError(
            f"{text!r}: hours must be 0-23, minutes and seconds 0-59 (use d.hh:mm:ss for days)"
        )
    interval = timedelta(
        days=int(match.group("days") or 0),
        hours=hours,
        minutes=minutes,
        seconds=seconds,
        microseconds=int((match.group("fraction") or "0").ljust(7, "0")) // 10,
    )
    if interval <= timedelta(0):
        raise ScheduleError(f"{text!r}: the interval must be longer than zero")
    return IntervalSchedule(text=text, interval=interval)


def _parse_field(spec: _Field, text: str) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        values |= _parse_item(spec, item, text)
    return values


def _parse_item(spec: _Field, item: str, field_text: str) -> set[int]:
    if not item:
        raise ScheduleError(f"{spec.name} field {field_text!r}: empty list item")
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _NUMBER.match(step_text) or int(step_text) < 1:
            raise ScheduleError(
                f"{spec.name} field {field_text!r}: the step after '/' must be a whole number"
                " of at least 1"
            )
        step = int(step_text)
    if base == "*":
        low, high = spec.low, spec.high
    elif "-" in base:
        first, _, last = base.partition("-")
        low, high = _parse_value(spec, first, field_text), _parse_value(spec, last, field_text)
        # NCrontab swaps a reversed range ("Fri-Mon" is Monday to Friday), it does not wrap.
        low, high = min(low, high), max(low, high)
    else:
        low = _parse_value(spec, base, field_text)
        high = spec.high if slash else low
    return set(range(low, high + 1, step))


def _parse_value(spec: _Field, text: str, field_text: str) -> int:
    where = f"{spec.name} field {field_text!r}"
    if _NUMBER.match(text):
        value = int(text)
        if not spec.low <= value <= spec.high:
            raise ScheduleError(f"{where}: {value} is out of range {spec.low}-{spec.high}")
        return value
    if spec.names and _NAME.match(text):
        for index, name in enumerate(spec.names):
            if name.lower().startswith(text.lower()):
                return spec.low + index
        known = ", ".join(name[:3] for name in spec.names)
        raise ScheduleError(f"{where}: {text!r} is not a known name (use one of {known})")
    expected = f"a number {spec.low}-{spec.high}" + (" or a name" if spec.names else "")
    raise ScheduleError(f"{where}: {text!r} is not {expected}")
