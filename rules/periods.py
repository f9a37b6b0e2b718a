"""Period arithmetic of the dashboard. Periods start at midnight in the reader's time zone;
the kept figures are summed by UTC month (or UTC day). A local period is read as the kept
figures of the nearest UTC months, corrected by the leads of the hours between the local
and the UTC bounds."""

from collections import defaultdict, namedtuple
from datetime import datetime, time, timedelta

import pytz
from dateutil.relativedelta import relativedelta

PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}

# The hours between a local period bound and the UTC bound nearest it: counted (sign +1)
# or taken back (sign -1) for the period that starts at `index`, and the other way for
# the period before it.
Correction = namedtuple("Correction", "index start end sign")


def period_days(period, today):
    """(first day, day after) of the period of `today`, and of the one before it."""
    months = PERIOD_MONTHS[period]
    first_month = (today.month - 1) // months * months + 1
    start = today.replace(month=first_month, day=1)
    return (start, start + relativedelta(months=months)), (
        start - relativedelta(months=months),
        start,
    )


def utc_midnight(day, tz_name):
    """The start of `day` in the time zone `tz_name`, as a naive UTC datetime."""
    tz = pytz.timezone(tz_name or "UTC")
    return tz.localize(datetime.combine(day, time.min)).astimezone(pytz.UTC).replace(tzinfo=None)


def nearest_utc_month(moment):
    """The UTC month start nearest to a local month start (time zones are within 14 hours
    of UTC)."""
    return (moment + timedelta(days=15)).replace(day=1, hour=0, minute=0, second=0)


def nearest_utc_day(moment):
    """The UTC midnight nearest to a local midnight."""
    return (moment + timedelta(hours=12)).replace(hour=0, minute=0, second=0)


def align_bounds(bounds, align):
    """Period k of `bounds` [b0, b1, …] is the kept figures of [align(bk), align(bk+1))
    plus the leads of [bk, align(bk)) minus those of [bk+1, align(bk+1)), an interval
    backwards counting negatively: returns the aligned bounds and the non-empty
    corrections, which are read from the leads."""
    aligned = [align(bound) for bound in bounds]
    corrections = [
        Correction(index, min(bound, edge), max(bound, edge), 1 if bound < edge else -1)
        for index, (bound, edge) in enumerate(zip(bounds, aligned, strict=True))
        if bound != edge
    ]
    return aligned, corrections


def corrected_periods(correction, period_count):
    """[(period, factor)] a correction counts for among the `period_count` periods shown:
    the period it starts, and against the one before."""
    index, sign = correction.index, correction.sign
    return [
        (period, factor)
        for period, factor in ((index, sign), (index - 1, -sign))
        if 0 <= period < period_count
    ]


def corrections_by_period(corrections, rows, period_count):
    """{(period, *group): value} of the `rows` [(correction index, *group, value)] read
    from the leads for the corrections."""
    by_index = {correction.index: correction for correction in corrections}
    totals = defaultdict(float)
    for index, *group, value in rows:
        for period, factor in corrected_periods(by_index[index], period_count):
            totals[(period, *group)] += factor * (value or 0)
    return totals
