"""The stage clock: whole days (24-hour periods, the same for readers in every time zone)
since a deal entered its stage, and its state against the stage's maximum days: at risk
from three quarters of the maximum, overdue past it. A stage without a maximum has no
state."""

from datetime import timedelta

from odoo.tools import SQL

SECONDS_PER_DAY = 86400
# At risk from AT_RISK_SHARE of the stage's maximum days: days * 4 >= maximum * 3.
AT_RISK_SHARE = (3, 4)
SLA_STATES = ("on_track", "at_risk", "overdue")
# A deal is stale after this many whole days without news, unless its team or company says.
DEFAULT_STALE_AFTER_DAYS = 3


def whole_days(entered, now):
    return max(0, int((now - entered).total_seconds() // SECONDS_PER_DAY))


def whole_days_sql(entered, now):
    """SQL integer of whole_days(); `entered` and `now` are SQL expressions or values."""
    return SQL(
        "GREATEST(0, FLOOR(EXTRACT(EPOCH FROM (%s - %s)) / %s))::int",
        now,
        entered,
        SECONDS_PER_DAY,
    )


def sla_state(days, max_days):
    if not max_days or max_days <= 0:
        return False
    share, whole = AT_RISK_SHARE
    if days > max_days:
        return "overdue"
    if days * whole >= max_days * share:
        return "at_risk"
    return "on_track"


def sla_state_sql(days, max_days):
    """SQL text of sla_state() (NULL for no state); `days`, `max_days` SQL expressions."""
    share, whole = AT_RISK_SHARE
    return SQL(
        """(CASE WHEN COALESCE(%(max)s, 0) <= 0 THEN NULL
                 WHEN %(days)s > %(max)s THEN 'overdue'
                 WHEN %(days)s * %(whole)s >= %(max)s * %(share)s THEN 'at_risk'
                 ELSE 'on_track' END)""",
        days=days,
        max=max_days,
        whole=whole,
        share=share,
    )


def more_whole_days_bound_sql(now, days):
    """SQL timestamp: a moment at or before it lies more than `days` (SQL integer) whole
    days before `now` (more than N whole days ⇔ at least N + 1 days)."""
    return SQL("(%s - make_interval(days => %s + 1))", now, days)


def overdue_sql(entered, now, max_days):
    """SQL boolean: sla_state() is overdue, written on `entered` alone so that an index on
    it bounds the rows."""
    return SQL("(%s > 0 AND %s <= %s)", max_days, entered, more_whole_days_bound_sql(now, max_days))


def entered_days_ago_domain(field, operator, days, now):
    """Domain on the datetime `field` for "whole days since `field` `operator` `days`",
    on the stored date (indexable) rather than on a computed number of days."""

    def at_least(count):
        return (field, "<=", now - timedelta(days=count))

    def fewer_than(count):
        return (field, ">", now - timedelta(days=count))

    return {
        ">": [at_least(days + 1)],
        ">=": [at_least(days)],
        "<": [fewer_than(days)],
        "<=": [fewer_than(days + 1)],
        "=": [at_least(days), fewer_than(days + 1)],
        "!=": ["|", fewer_than(days), at_least(days + 1)],
    }[operator]
