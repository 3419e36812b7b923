"""Recurring tasks: the RRULE subset we accept, and the next occurrence's due date.

Parsing and stepping are python-dateutil's (`rrulestr`, RFC 5545); this module only narrows what is
accepted to a subset every client can show and edit:

    FREQ=DAILY|WEEKLY|MONTHLY|YEARLY (required), INTERVAL=1-1000, BYDAY=MO,...,SU (WEEKLY only,
    no numeric prefixes), COUNT=1-10000, UNTIL=YYYYMMDDTHHMMSSZ (UTC, as due_at is stored);
    each part at most once, COUNT and UNTIL not both (RFC 5545 forbids it), upper case, `;` between.

How a series is stepped: from the current occurrence's `due_at`, in UTC (as it is stored), to the
rule's first date strictly after it. Stepping from the current date rather than from the series'
first keeps the cost of a step constant; the two agree for every rule of the subset, since each
occurrence is a date of the rule. `COUNT` counts the whole series from its first occurrence: each
task knows its place in the series (`occurrence`, 1 for the first), so the next one exists while
`occurrence < COUNT`. `UNTIL` is a date, inclusive. A MONTHLY rule from the 31st skips the months
without a 31st, and a YEARLY rule from 29 February skips to the next leap year (RFC 5545, as
dateutil does).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dateutil.rrule import rrule, rrulestr

from app.errors import FieldError

MAX_CHARS = 200
_DAY = r"(?:MO|TU|WE|TH|FR|SA|SU)"
_PART = (
    r"(?:FREQ=(?:DAILY|WEEKLY|MONTHLY|YEARLY)"
    r"|INTERVAL=[1-9][0-9]{0,3}"
    rf"|BYDAY={_DAY}(?:,{_DAY}){{0,6}}"
    r"|COUNT=[1-9][0-9]{0,4}"
    r"|UNTIL=[0-9]{8}T[0-9]{6}Z)"
)
# The syntax (the decoder and the OpenAPI document agree on it); the rest is checked by `check`.
PATTERN = rf"^{_PART}(?:;{_PART})*$"
RULE = (
    "recurrence must be an RRULE of FREQ=DAILY|WEEKLY|MONTHLY|YEARLY with optional INTERVAL (1-1000), "
    "BYDAY (WEEKLY only), COUNT (1-10000) or UNTIL (YYYYMMDDTHHMMSSZ), each at most once, not COUNT and UNTIL together"
)
_SYNTAX = re.compile(PATTERN)
MAX_INTERVAL = 1000
MAX_COUNT = 10_000


def _parts(text: str) -> dict[str, str] | None:
    """NAME -> value, or None when the text is not of the subset."""
    if len(text) > MAX_CHARS or not _SYNTAX.match(text):
        return None
    parts: dict[str, str] = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        if name in parts:
            return None
        parts[name] = value
    if "FREQ" not in parts or ("COUNT" in parts and "UNTIL" in parts):
        return None
    if "BYDAY" in parts:
        days = parts["BYDAY"].split(",")
        if parts["FREQ"] != "WEEKLY" or len(set(days)) != len(days):
            return None
    if int(parts.get("INTERVAL", "1")) > MAX_INTERVAL or int(parts.get("COUNT", "1")) > MAX_COUNT:
        return None
    return parts


def _rule(text: str, start: datetime) -> rrule:
    """The rule from `start` (aware), without COUNT (counted by occurrence number instead)."""
    parsed = rrulestr(text, dtstart=start.astimezone(UTC))
    assert isinstance(parsed, rrule)
    return parsed.replace(count=None)


def check(text: str) -> FieldError | None:
    """None when `text` is a rule of the subset; else the 422 detail naming `recurrence`."""
    if _parts(text) is None:
        return FieldError("recurrence", RULE)
    try:
        _rule(text, datetime(2000, 1, 1, tzinfo=UTC))  # dateutil's own parse: an UNTIL that is no date
    except (ValueError, OverflowError):
        return FieldError("recurrence", RULE)
    return None


def next_due(text: str, due_at: datetime, occurrence: int) -> datetime | None:
    """The next occurrence's due date after the `occurrence`-th one due at `due_at`; None once the
    rule is exhausted (COUNT reached, past UNTIL, or beyond the year 9999)."""
    parts = _parts(text)
    if parts is None:
        return None  # not ours (cannot be stored); nothing to repeat
    if "COUNT" in parts and occurrence >= int(parts["COUNT"]):
        return None
    try:
        following: datetime | None = _rule(text, due_at).after(due_at.astimezone(UTC), inc=False)
    except (ValueError, OverflowError):
        return None
    return following
