"""Recurrence: parse an ``RRULE`` and expand it in naive local time.

Occurrences are computed on the wall clock (naive datetimes), never with
arithmetic on aware datetimes, and only then localised one by one, so
08:00 stays 08:00 across a DST change.

The DST rule (PEP 495 ``fold=0``), for the start and the end alike:

* a wall time in the spring gap, which does not exist, moves forward by the
  length of the gap (Zurich, last Sunday of March, 02:30 becomes 03:30 CEST);
* a wall time in the autumn's repeated hour is its first occurrence, still
  in summer time (Zurich, last Sunday of October, 02:30 is 02:30 CEST).

So an occurrence wholly inside the gap moves forward as a whole, one that
starts in it and ends after it is shortened, and one with no length left
(02:00–03:00 on Zurich's spring day) does not happen that day: it is left
out like an exception. Should the gap move an occurrence onto the next one
(rules repeating within the hour), the later one is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import NamedTuple

from dateutil.rrule import rrule, rrulestr

from libres.modules.dates import get_timezone
from libres.modules.errors import InvalidRuleError

MAX_HORIZON = timedelta(days=3653)  # ten years, leap days included
# How many occurrences are checked for overlapping each other up front.
OVERLAP_PROBE = 400


class Occurrence(NamedTuple):
    """One occurrence: naive local start and end, and both as aware UTC."""

    local_start: datetime
    local_end: datetime
    start: datetime
    end: datetime


def localise(naive: datetime, zone: str) -> datetime:
    """Aware UTC for a naive wall time, by the module's DST rule (fold=0)."""
    return naive.replace(tzinfo=get_timezone(zone), fold=0).astimezone(UTC)


def normalised_text(text: str) -> str:
    """The rule without an ``RRULE:`` prefix, upper case, no blanks."""
    if not isinstance(text, str):
        raise InvalidRuleError(f'the recurrence must be RRULE text, got {text!r}')
    cleaned = ''.join(text.split()).upper()
    if cleaned.startswith('RRULE:'):
        cleaned = cleaned[len('RRULE:'):]
    return cleaned


def parse(text: str, dtstart: datetime) -> rrule:
    """The dateutil rule for RRULE text starting at the naive ``dtstart``."""
    cleaned = normalised_text(text)
    if not cleaned.startswith('FREQ=') and ';FREQ=' not in cleaned:
        raise InvalidRuleError(f'the recurrence needs a FREQ: {text!r}')
    if any(part in cleaned for part in ('DTSTART', 'RDATE', 'EXDATE', 'EXRULE', ':')):
        raise InvalidRuleError(
            f'give one RRULE without DTSTART, RDATE or EXDATE (start and exceptions are '
            f'separate arguments): {text!r}'
        )
    try:
        parsed = rrulestr(cleaned, dtstart=dtstart)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise InvalidRuleError(f'invalid RRULE {text!r}: {error}') from error
    if not isinstance(parsed, rrule):
        raise InvalidRuleError(f'give one RRULE, not a set: {text!r}')  # pragma: no cover
    return parsed


def rule_text(parsed: rrule) -> str:
    """The RRULE part of a dateutil rule (its DTSTART is stored apart)."""
    for line in str(parsed).splitlines():
        if line.startswith('RRULE:'):
            return line[len('RRULE:'):]
    raise AssertionError(f'no RRULE in {parsed}')  # pragma: no cover


def count_of(parsed: rrule) -> int | None:
    """The rule's COUNT, if it has one."""
    for part in rule_text(parsed).split(';'):
        if part.startswith('COUNT='):
            return int(part[len('COUNT='):])
    return None


@dataclass(frozen=True)
class Recurrence:
    """A parsed rule with its first occurrence, zone and exceptions."""

    rule: rrule
    start: datetime  # naive local
    end: datetime  # naive local
    timezone: str
    exceptions: frozenset[date] = frozenset()

    @classmethod
    def of(
        cls, text: str, start: datetime, end: datetime, timezone: str,
        exceptions: Iterable[date] = (),
    ) -> Recurrence:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise InvalidRuleError('give the first occurrence in naive local time')
        if end <= start:
            raise InvalidRuleError(f'the occurrence must end after it starts ({start} – {end})')
        return cls(parse(text, start), start, end, timezone, frozenset(exceptions))

    @property
    def duration(self) -> timedelta:
        """The wall-clock length of every occurrence."""
        return self.end - self.start

    def local_starts(self, after: datetime, before: datetime) -> Iterator[datetime]:
        """Naive starts in [after, before), exceptions left out."""
        for moment in self.rule.xafter(after, inc=True):
            if moment >= before:
                return
            if moment.date() not in self.exceptions:
                yield moment

    def occurrences(self, after: datetime, before: datetime) -> list[Occurrence]:
        """Occurrences starting in [after, before) (naive local), localised one
        by one; those the DST gap leaves without length are left out."""
        result = []
        duration = self.duration
        for local_start in self.local_starts(after, before):
            local_end = local_start + duration
            start, end = localise(local_start, self.timezone), localise(local_end, self.timezone)
            if end > start:
                result.append(Occurrence(local_start, local_end, start, end))
        return result

    def first(self) -> datetime | None:
        """The first naive start that is no exception, or None."""
        for moment in self.rule:
            if moment.date() not in self.exceptions:
                return moment
        return None

    def require_valid(self) -> None:
        """Refuse a rule without occurrences or whose occurrences overlap."""
        if self.first() is None:
            raise InvalidRuleError('the rule yields no occurrence')
        probe = []
        for moment in self.rule:
            probe.append(moment)
            if len(probe) >= OVERLAP_PROBE:
                break
        require_apart(probe, self.duration)


def require_apart(starts: list[datetime], duration: timedelta) -> None:
    """Occurrences of one rule must not overlap each other."""
    for earlier, later in pairwise(starts):
        if later < earlier + duration:
            raise InvalidRuleError(
                f'occurrences overlap: {earlier} lasts {duration}, the next starts {later}'
            )
