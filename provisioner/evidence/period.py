"""The period of an evidence export: one meaning of ``from`` and ``to`` for the CLI
(``provisioner evidence export --from … --to …``) and the API (``GET /evidence/revocations?from=…&to=…``).

- A date (``2026-11-22``) as ``from`` is the start of that day; as ``to`` it includes that whole
  day (the period ends at the start of the next day). ``--from D --to D`` is day D.
- A date and time (RFC 3339 / ISO 8601, ``2026-11-22T17:00:00+01:00``) is that instant; as ``to``
  it is exclusive (the period is ``[from, to)``).
- Without an offset, dates and times are UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

DATE_LENGTH = len("2026-11-22")


class PeriodError(ValueError):
    """A ``from``/``to`` that is not a date or a date and time, or an empty period."""


def _bound(value: str, name: str, *, end: bool) -> datetime:
    text = value.strip()
    if len(text) == DATE_LENGTH:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise PeriodError(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an RFC 3339 time") from None
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an RFC 3339 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_period(from_: str, to: str) -> tuple[datetime, datetime]:
    """``(start, end)`` with ``start`` inclusive and ``end`` exclusive, both timezone-aware."""
    start = _bound(from_, "from", end=False)
    end = _bound(to, "to", end=True)
    if end <= start:
        raise PeriodError(f"to ({to}) must be after from ({from_}); a date as 'to' includes that whole day")
    return start, end


def last_day(end: datetime) -> date:
    """The last day a period ending (exclusively) at ``end`` touches, for file names."""
    return (end - timedelta(microseconds=1)).date()
