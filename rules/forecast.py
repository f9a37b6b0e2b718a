"""Forecast categories: the one a salesperson sets, else the one the score gives (Commit
from the company's commit threshold, Best case from its best-case threshold, else
Pipeline); and the calibrated win likelihood of a score bucket."""

from odoo.tools import SQL

CATEGORIES = ("commit", "best_case", "pipeline", "omitted")
# res.company fields holding the thresholds (a score at or above gives the category).
THRESHOLD_FIELDS = ("forecast_commit_score", "forecast_best_case_score")
DEFAULT_THRESHOLDS = (75, 50)
# Scores are bucketed by tens for the calibration (0 to 9, and so on, 90 to 100).
BUCKET_WIDTH = 10
BUCKETS = 10


def company_thresholds(company):
    """(commit, best case) of a res.company record; the defaults without a company."""
    if not company:
        return DEFAULT_THRESHOLDS
    return tuple(company[fname] for fname in THRESHOLD_FIELDS)


def category_from_score(score, thresholds):
    commit, best_case = thresholds
    if score >= commit:
        return "commit"
    if score >= best_case:
        return "best_case"
    return "pipeline"


def category_from_score_sql(score, thresholds):
    """SQL text of category_from_score(); `score` and the thresholds are SQL expressions."""
    commit, best_case = thresholds
    return SQL(
        "(CASE WHEN %s >= %s THEN 'commit' WHEN %s >= %s THEN 'best_case' ELSE 'pipeline' END)",
        score,
        commit,
        score,
        best_case,
    )


def score_bucket(score):
    return min(BUCKETS - 1, max(0, score or 0) // BUCKET_WIDTH)


def score_bucket_sql(score):
    return SQL("LEAST(%s, GREATEST(0, COALESCE(%s, 0)) / %s)", BUCKETS - 1, score, BUCKET_WIDTH)


def calibrated_rate(won, closed):
    """The bucket's win rate, shrunk towards one half when it has few deals (Laplace): a
    bucket of 2 won out of 2 says 75 %, not 100 %."""
    return (won + 1) / (closed + 2)


def brier_score(rows):
    """Mean squared error of (predicted likelihood 0–1, won 0/1, count) rows; lower is
    better, 0.25 is a coin's."""
    total = sum(count for _predicted, _won, count in rows)
    if not total:
        return None
    return sum((predicted - won) ** 2 * count for predicted, won, count in rows) / total


def roc_auc(rows):
    """Area under the ROC curve of (predicted, won 0/1, count) rows: the chance that a won
    deal was given more than a lost one (ties count half); 0.5 is a coin's."""
    by_prediction = {}
    for predicted, won, count in rows:
        won_lost = by_prediction.setdefault(predicted, [0, 0])
        won_lost[0 if won else 1] += count
    won_total = sum(won for won, _lost in by_prediction.values())
    lost_total = sum(lost for _won, lost in by_prediction.values())
    if not won_total or not lost_total:
        return None
    lost_below, area = 0, 0.0
    for predicted in sorted(by_prediction):
        won, lost = by_prediction[predicted]
        area += won * (lost_below + lost / 2)
        lost_below += lost
    return area / (won_total * lost_total)
