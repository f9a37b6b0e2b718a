"""Stars from a score: one star above the company's first threshold, two above the second,
three above the third; an escalated deal gets one more, three at most."""

from odoo.tools import SQL

MAX_STARS = 3
# res.company fields holding the thresholds, from one star to three, and their defaults.
THRESHOLD_FIELDS = (
    "score_threshold_one_star",
    "score_threshold_two_stars",
    "score_threshold_three_stars",
)
DEFAULT_THRESHOLDS = (25, 50, 75)


def company_thresholds(company):
    """(one star, two stars, three stars) of a res.company record; the defaults for a lead
    without a company, as the bulk rescoring reads them."""
    if not company:
        return DEFAULT_THRESHOLDS
    return tuple(company[fname] for fname in THRESHOLD_FIELDS)


def _levels(thresholds):
    """(stars, threshold) from the most stars down: the first exceeded gives the stars."""
    return reversed(list(enumerate(thresholds, start=1)))


def star_count(score, thresholds):
    return next((stars for stars, bound in _levels(thresholds) if score > bound), 0)


def star_count_sql(score, thresholds):
    """SQL integer of star_count(); `score` and each threshold are SQL expressions."""
    return SQL(
        "(CASE %s ELSE 0 END)",
        SQL(" ").join(
            SQL("WHEN %s > %s THEN %s", score, bound, stars) for stars, bound in _levels(thresholds)
        ),
    )


def priority(stars, is_escalated):
    """crm's priority (a string of 0 to 3) of a deal with `stars` from its score."""
    return str(min(MAX_STARS, stars + (1 if is_escalated else 0)))


def priority_sql(stars, is_escalated):
    """SQL text of priority(); `stars` and `is_escalated` are SQL expressions."""
    return SQL(
        "LEAST(%s, %s + CASE WHEN %s THEN 1 ELSE 0 END)::text", MAX_STARS, stars, is_escalated
    )


def escalated_priority_sql(current_priority):
    """SQL text: one star more than `current_priority` (SQL of crm's priority column)."""
    return priority_sql(SQL("COALESCE(%s, '0')::int", current_priority), SQL("TRUE"))
