"""Timer schedules: NCRONTAB and TimeSpan forms, next occurrences from a fixed instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from devhost.ncrontab import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule

# A Friday, with a fraction of a second to show occurrences land on whole seconds.
FROM = datetime(2025, 3, 14, 10, 7, 42, 250_000, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def occurrences(schedule: str, count: int, start: datetime = FROM) -> list[datetime]:
    parsed = parse_schedule(schedule)
    found: list[datetime] = []
    moment = start
    for _ in range(count):
        moment = parsed.next_after(moment)
        found.append(moment)
    return found


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("*/5 * * * * *", ["2025-03-14 10:07:45", "2025-03-14 10:07:50", "2025-03-14 10:07:55"]),
        ("* * * * * *", ["2025-03-14 10:07:43", "2025-03-14 10:07:44", "2025-03-14 10:07:45"]),
        ("0 */30 * * * *", ["2025-03-14 10:30:00", "2025-03-14 11:00:00", "2025-03-14 11:30:00"]),
        (
            "0 0 9 * * Mon-Fri",
            ["2025-03-17 09:00:00", "2025-03-18 09:00:00", "2025-03-19 09:00:00"],
        ),
        ("0 0 9 * * 1-5", ["2025-03-17 09:00:00", "2025-03-18 09:00:00", "2025-03-19 09:00:00"]),
        # Day-of-week 0 is Sunday; names are matched in any case and by prefix, as NCrontab does.
        ("0 0 12 * * 0", ["2025-03-16 12:00:00", "2025-03-23 12:00:00", "2025-03-30 12:00:00"]),
        (
            "0 0 12 * * sat,SUN",
            ["2025-03-15 12:00:00", "2025-03-16 12:00:00", "2025-03-22 12:00:00"],
        ),
        (
            "0 0 12 * * Saturday",
            ["2025-03-15 12:00:00", "2025-03-22 12:00:00", "2025-03-29 12:00:00"],
        ),
        (
            "0 0 0 1 Jan,jul *",
            ["2025-07-01 00:00:00", "2026-01-01 00:00:00", "2026-07-01 00:00:00"],
        ),
        (
            "0 0 0 1 Feb-Apr *",
            ["2025-04-01 00:00:00", "2026-02-01 00:00:00", "2026-03-01 00:00:00"],
        ),
        (
            "0 15-45/15 8-17/4 * * *",
            ["2025-03-14 12:15:00", "2025-03-14 12:30:00", "2025-03-14 12:45:00"],
        ),
        ("10/20 * * * * *", ["2025-03-14 10:07:50", "2025-03-14 10:08:10", "2025-03-14 10:08:30"]),
        ("0 0 0,12 * * *", ["2025-03-14 12:00:00", "2025-03-15 00:00:00", "2025-03-15 12:00:00"]),
        # Day of month and day of week must both match (NCrontab), not either (Vixie cron).
        ("0 0 0 13 * Fri", ["2025-06-13 00:00:00", "2026-02-13 00:00:00", "2026-03-13 00:00:00"]),
        ("30 0 0 29 Feb *", ["2028-02-29 00:00:30", "2032-02-29 00:00:30", "2036-02-29 00:00:30"]),
        ("0 0 0 29 Feb Mon", ["2044-02-29 00:00:00"]),
        ("0 0 0 31 * *", ["2025-03-31 00:00:00", "2025-05-31 00:00:00", "2025-07-31 00:00:00"]),
        ("0 59 23 31 Dec *", ["2025-12-31 23:59:00", "2026-12-31 23:59:00"]),
        # A reversed range is swapped (Monday to Friday), not wrapped round the week.
        ("0 0 10 * * Fri-Mon", ["2025-03-17 10:00:00", "2025-03-18 10:00:00"]),
        ("  0   0   9   *  *  Mon  ", ["2025-03-17 09:00:00"]),
        ("00:00:02", ["2025-03-14 10:07:44.250", "2025-03-14 10:07:46.250"]),
        ("00:30:00", ["2025-03-14 10:37:42.250"]),
        ("1.00:00:00", ["2025-03-15 10:07:42.250"]),
        ("00:00:00.5", ["2025-03-14 10:07:42.750"]),
        # .NET's TimeSpan also reads hh:mm.
        ("01:30", ["2025-03-14 11:37:42.250"]),
    ],
)
def test_next_occurrences(schedule: str, expected: list[str]) -> None:
    assert occurrences(schedule, len(expected)) == [at(text) for text in expected]


def test_the_next_occurrence_is_strictly_after_the_instant() -> None:
    on_the_dot = datetime(2025, 3, 14, 10, 30, tzinfo=UTC)
    assert occurrences("0 */30 * * * *", 1, on_the_dot) == [at("2025-03-14 11:00:00")]


def test_instants_in_other_zones_are_read_as_utc() -> None:
    # 11:07:42 at UTC+1 is 10:07:42 UTC: the schedule is in UTC whatever the caller's zone.
    plus_one = FROM.astimezone(timezone(timedelta(hours=1)))
    assert occurrences("0 0 11 * * *", 1, plus_one) == [at("2025-03-14 11:00:00")]
    assert occurrences("0 0 11 * * *", 1, FROM.replace(tzinfo=None)) == [at("2025-03-14 11:00:00")]


def test_parsed_forms() -> None:
    cron = parse_schedule("0 */30 9-17 * * Mon-Fri")
    assert isinstance(cron, CronSchedule)
    assert cron.text == "0 */30 9-17 * * Mon-Fri"
    assert cron.minutes == (0, 30)
    assert cron.hours == tuple(range(9, 18))
    assert cron.days_of_week == frozenset({1, 2, 3, 4, 5})
    interval = parse_schedule("00:05:00")
    assert interval == IntervalSchedule(text="00:05:00", interval=timedelta(minutes=5))


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("", "the schedule is empty"),
        ("   ", "the schedule is empty"),
        ("*/5 * * * *", "expected six NCRONTAB fields .* got 5 field"),
        ("0 0 0 * * * 2025", "got 7 field"),
        ("every five minutes", "got 3 field"),
        ("0 0 25 * * *", r"hour field '25': 25 is out of range 0-23"),
        ("60 * * * * *", r"second field '60': 60 is out of range 0-59"),
        ("0 0 0 0 * *", r"day field '0': 0 is out of range 1-31"),
        ("0 0 0 * 13 *", r"month field '13': 13 is out of range 1-12"),
        ("0 0 0 * * 7", r"day-of-week field '7': 7 is out of range 0-6"),
        ("*/0 * * * * *", "the step after '/' must be a whole number of at least 1"),
        ("*/x * * * * *", "the step after '/' must be a whole number"),
        ("0 0 0 * Foo *", r"month field 'Foo': 'Foo' is not a known name \(use one of Jan, Feb"),
        ("0 0 0 * * Mo-Fry", r"day-of-week field 'Mo-Fry': 'Fry' is not a known name"),
        ("0 0 a * * *", r"hour field 'a': 'a' is not a number 0-23$"),
        ("0 0 9 * * Mon-", r"day-of-week field 'Mon-': '' is not a number 0-6 or a name"),
        ("0 0 9,,10 * * *", r"hour field '9,,10': empty list item"),
        ("0 0 -1 * * *", r"hour field '-1': '' is not a number"),
        ("0 0 0 31 Feb *", "never match a real date"),
        ("0 0 0 30,31 Feb *", "never match a real date"),
        ("00:00:00", "the interval must be longer than zero"),
        ("24:00:00", "hours must be 0-23"),
        ("00:61:00", "minutes and seconds 0-59"),
        ("5m:00", "'5m:00' is not a TimeSpan like 00:05:00 or 1.00:00:00"),
        ("1:2:3:4", "is not a TimeSpan"),
        ("00:05:00.12345678", "is not a TimeSpan"),
    ],
)
def test_invalid_schedules_say_what_is_wrong(schedule: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(schedule)
