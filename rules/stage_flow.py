"""Stage flow: the median days in a stage, counted in whole days so that it can be kept as
a histogram (days → visits) and read from it as PostgreSQL's percentile_cont reads the
visits."""

import math

from odoo.tools import SQL


def whole_days(days):
    return math.floor(days)


def whole_days_sql(days):
    """SQL text of whole_days(); `days` an SQL expression."""
    return SQL("floor(%s)::int", days)


def histogram_median(histogram):
    """percentile_cont(0.5) of the values of `histogram` {value: how many}: the middle
    value, or halfway between the two middle ones; None when it holds none."""
    counted = sorted((value, count) for value, count in histogram.items() if count)
    total = sum(count for _value, count in counted)
    if not total:
        return None
    position = (total - 1) / 2
    low, high = math.floor(position), math.ceil(position)
    low_value = high_value = None
    seen = 0
    for value, count in counted:
        if low_value is None and low < seen + count:
            low_value = value
        if high < seen + count:
            high_value = value
            break
        seen += count
    return low_value + (position - low) * (high_value - low_value)
