from datetime import date, datetime, timedelta

from odoo.addons.crm_pipeline_optimizer.rules import (
    forecast,
    periods,
    stage_clock,
    stage_flow,
    stars,
)
from odoo.tests import TransactionCase, tagged
from odoo.tools import SQL

NOW = datetime(2025, 3, 10, 12, 0, 0)


@tagged("rules", "lead_scoring", "post_install", "-at_install")
class TestStarsRule(TransactionCase):
    """The Python rule and the SQL generated from it give the same stars."""

    def _sql_values(self, expressions):
        self.env.cr.execute(SQL("SELECT %s", SQL(", ").join(expressions)))
        return list(self.env.cr.fetchone())

    def test_star_count_python_equals_sql(self):
        for thresholds in ((25, 50, 75), (10, 20, 90), (0, 1, 2), (60, 70, 99)):
            scores = range(0, 101)
            expected = [stars.star_count(score, thresholds) for score in scores]
            got = self._sql_values([stars.star_count_sql(score, thresholds) for score in scores])
            self.assertEqual(got, expected, thresholds)

    def test_star_count_follows_the_thresholds(self):
        self.assertEqual(
            [stars.star_count(score, (25, 50, 75)) for score in (0, 25, 26, 50, 51, 75, 76, 100)],
            [0, 0, 1, 1, 2, 2, 3, 3],
        )

    def test_priority_python_equals_sql(self):
        cases = [(count, escalated) for count in range(4) for escalated in (False, True)]
        got = self._sql_values(
            [stars.priority_sql(count, SQL("TRUE" if esc else "FALSE")) for count, esc in cases]
        )
        self.assertEqual(got, [stars.priority(count, esc) for count, esc in cases])
        self.assertEqual(stars.priority(3, True), "3")

    def test_escalation_adds_one_star_up_to_three(self):
        current = [None, "0", "1", "2", "3"]
        got = self._sql_values([stars.escalated_priority_sql(value) for value in current])
        self.assertEqual(got, ["1", "1", "2", "3", "3"])


@tagged("rules", "stage_clock", "post_install", "-at_install")
class TestStageClockRule(TransactionCase):
    """Days in stage and the SLA state: Python and SQL agree on every boundary."""

    HOURS_IN_STAGE = (-5, 0, 1, 23, 24, 25, 71, 72, 132, 383, 384, 503, 504, 527, 528, 529)
    MAX_DAYS = (0, 1, 3, 7, 14, 21, 22)

    def test_whole_days_python_equals_sql(self):
        entered = [NOW - timedelta(hours=hours) for hours in self.HOURS_IN_STAGE]
        self.env.cr.execute(
            SQL(
                "SELECT %s",
                SQL(", ").join(stage_clock.whole_days_sql(moment, NOW) for moment in entered),
            )
        )
        self.assertEqual(
            list(self.env.cr.fetchone()),
            [stage_clock.whole_days(moment, NOW) for moment in entered],
        )

    def test_sla_state_python_equals_sql(self):
        cases = [
            (NOW - timedelta(hours=hours), max_days)
            for hours in self.HOURS_IN_STAGE
            for max_days in self.MAX_DAYS
        ]
        expressions = []
        for entered, max_days in cases:
            days = stage_clock.whole_days_sql(entered, NOW)
            expressions.append(stage_clock.sla_state_sql(days, max_days))
            expressions.append(stage_clock.overdue_sql(entered, NOW, max_days))
        self.env.cr.execute(SQL("SELECT %s", SQL(", ").join(expressions)))
        row = self.env.cr.fetchone()
        for index, (entered, max_days) in enumerate(cases):
            state = stage_clock.sla_state(stage_clock.whole_days(entered, NOW), max_days)
            self.assertEqual(row[2 * index] or False, state, (entered, max_days))
            self.assertEqual(row[2 * index + 1], state == "overdue", (entered, max_days))

    def test_sla_boundaries(self):
        # Negotiation, 7 to 21 days: at risk from day 16, overdue from day 22.
        self.assertEqual(stage_clock.sla_state(15, 21), "on_track")
        self.assertEqual(stage_clock.sla_state(16, 21), "at_risk")
        self.assertEqual(stage_clock.sla_state(21, 21), "at_risk")
        self.assertEqual(stage_clock.sla_state(22, 21), "overdue")
        self.assertFalse(stage_clock.sla_state(100, 0))

    def test_days_domain_agrees_with_whole_days(self):
        Lead = self.env["crm.lead"]
        leads = Lead.create(
            [{"name": f"Clock {hours}", "type": "opportunity"} for hours in self.HOURS_IN_STAGE]
        )
        for lead, hours in zip(leads, self.HOURS_IN_STAGE, strict=True):
            lead.date_last_stage_update = NOW - timedelta(hours=hours)
        for operator in ("=", "!=", "<", "<=", ">", ">="):
            for days in (0, 1, 5, 21, 22):
                domain = stage_clock.entered_days_ago_domain(
                    "date_last_stage_update", operator, days, NOW
                )
                found = Lead.search([("id", "in", leads.ids), *domain])
                expected = leads.filtered(
                    lambda lead, op=operator, d=days: {
                        "=": lambda a, b: a == b,
                        "!=": lambda a, b: a != b,
                        "<": lambda a, b: a < b,
                        "<=": lambda a, b: a <= b,
                        ">": lambda a, b: a > b,
                        ">=": lambda a, b: a >= b,
                    }[op](stage_clock.whole_days(lead.date_last_stage_update, NOW), d)
                )
                # A clock in the future counts 0 days in Python; the domain compares the
                # date itself: the one lead entered 5 hours from now is left out.
                future = leads.filtered(lambda lead: lead.date_last_stage_update > NOW)
                self.assertEqual(found - future, expected - future, (operator, days))


@tagged("rules", "dashboard", "post_install", "-at_install")
class TestPeriodRules(TransactionCase):
    def test_period_days(self):
        self.assertEqual(
            periods.period_days("quarter", date(2025, 5, 17)),
            ((date(2025, 4, 1), date(2025, 7, 1)), (date(2025, 1, 1), date(2025, 4, 1))),
        )
        self.assertEqual(
            periods.period_days("year", date(2025, 5, 17))[0], (date(2025, 1, 1), date(2026, 1, 1))
        )

    def test_utc_reader_needs_no_correction(self):
        bounds = [periods.utc_midnight(date(2025, month, 1), "UTC") for month in (1, 2, 3)]
        aligned, corrections = periods.align_bounds(bounds, periods.nearest_utc_month)
        self.assertEqual(aligned, bounds)
        self.assertEqual(corrections, [])

    def test_corrections_of_a_reader_east_of_utc(self):
        # Tehran is UTC+3:30: its March starts at 20:30 UTC on the last day of February.
        bounds = [periods.utc_midnight(date(2025, month, 1), "Asia/Tehran") for month in (2, 3)]
        aligned, corrections = periods.align_bounds(bounds, periods.nearest_utc_month)
        self.assertEqual(aligned, [datetime(2025, 2, 1), datetime(2025, 3, 1)])
        self.assertEqual(
            corrections,
            [
                periods.Correction(0, datetime(2025, 1, 31, 20, 30), datetime(2025, 2, 1), 1),
                periods.Correction(1, datetime(2025, 2, 28, 20, 30), datetime(2025, 3, 1), 1),
            ],
        )
        # 4 leads of the first correction's hours count for February; 2 of the second's
        # belong to March, so they are taken back from February.
        totals = periods.corrections_by_period(corrections, [(0, 4), (1, 2)], 1)
        self.assertEqual(dict(totals), {(0,): 2.0})


@tagged("rules", "forecast", "post_install", "-at_install")
class TestForecastRules(TransactionCase):
    """Forecast categories and score buckets: Python and the SQL generated agree; the
    quality figures are those known by hand."""

    def _sql_values(self, expressions):
        self.env.cr.execute(SQL("SELECT %s", SQL(", ").join(expressions)))
        return list(self.env.cr.fetchone())

    def test_category_python_equals_sql(self):
        for thresholds in ((75, 50), (50, 50), (100, 0), (30, 10)):
            scores = range(0, 101)
            expected = [forecast.category_from_score(score, thresholds) for score in scores]
            got = self._sql_values(
                [forecast.category_from_score_sql(score, thresholds) for score in scores]
            )
            self.assertEqual(got, expected, thresholds)

    def test_bucket_python_equals_sql(self):
        scores = [-5, 0, 9, 10, 55, 99, 100, 130]
        self.assertEqual(
            self._sql_values([forecast.score_bucket_sql(score) for score in scores]),
            [forecast.score_bucket(score) for score in scores],
        )
        self.assertEqual([forecast.score_bucket(s) for s in (0, 9, 10, 100)], [0, 0, 1, 9])

    def test_quality_figures(self):
        perfect = [(0.9, 1, 3), (0.1, 0, 3)]
        self.assertEqual(forecast.roc_auc(perfect), 1.0)
        self.assertAlmostEqual(forecast.brier_score(perfect), 0.01)
        coin = [(0.5, 1, 5), (0.5, 0, 5)]
        self.assertEqual(forecast.roc_auc(coin), 0.5)
        self.assertEqual(forecast.brier_score(coin), 0.25)
        # Two won at 0.8 and 0.4, two lost at 0.6 and 0.2: 3 of 4 pairs ranked right.
        mixed = [(0.8, 1, 1), (0.4, 1, 1), (0.6, 0, 1), (0.2, 0, 1)]
        self.assertEqual(forecast.roc_auc(mixed), 0.75)
        self.assertIsNone(forecast.roc_auc([(0.3, 1, 4)]), "no lost deal: not measurable")
        self.assertEqual(forecast.calibrated_rate(2, 2), 0.75)


@tagged("post_install", "-at_install")
class TestStageFlowRules(TransactionCase):
    """The median of whole days read from a histogram equals PostgreSQL's percentile_cont
    of the whole days of the visits."""

    def test_histogram_median_equals_percentile_cont(self):
        samples = [
            [0.2],
            [0.5, 1.9],
            [3.0, 3.7, 10.2, 0.1],
            [5.5, 5.5, 5.5, 2.25, 40.0],
            [float(days % 7) + 0.5 for days in range(23)],
        ]
        for days in samples:
            self.env.cr.execute(
                SQL(
                    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY %s) FROM unnest(%s) AS d",
                    stage_flow.whole_days_sql(SQL("d")),
                    days,
                )
            )
            histogram = {}
            for value in days:
                whole = stage_flow.whole_days(value)
                histogram[whole] = histogram.get(whole, 0) + 1
            self.assertEqual(stage_flow.histogram_median(histogram), self.env.cr.fetchone()[0])
        self.assertIsNone(stage_flow.histogram_median({3: 0}))
