from datetime import timedelta

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import SQL

from ..models.crm_lead_forecast import FORECAST_CATEGORIES
from ..models.crm_pipeline_figure import FIGURE_KEYS
from ..rules import forecast
from .common import TIME_ZONES, PipelineOptimizerCommon

FORECAST_EXAMPLES = 20

deal_strategy = st.tuples(
    st.integers(0, 2),  # salesperson: own, all documents, manager
    st.integers(0, 1),  # team: the pipeline team, none
    st.integers(-40, 75),  # expected closing, days from today
    st.integers(0, 100),  # score
    st.sampled_from([None, "commit", "best_case", "pipeline", "omitted"]),  # set category
    st.integers(0, 100),  # crm's probability
    st.one_of(st.none(), st.integers(0, 90000)),  # expected revenue
    st.sampled_from(["open", "open", "won", "lost", "lead"]),
    st.integers(0, 1),  # company: main, second
)


@tagged("forecast", "post_install", "-at_install")
class TestForecastCategory(PipelineOptimizerCommon):
    def _opportunity(self, score=0, **values):
        lead = self.env["crm.lead"].create(
            {
                "name": "Forecast deal",
                "type": "opportunity",
                "team_id": self.sales_team.id,
                "user_id": self.user_salesman_own.id,
                **values,
            }
        )
        self._set_score(lead, score)
        return lead

    def _set_score(self, lead, score):
        self.env.flush_all()
        self.env.cr.execute(SQL("UPDATE crm_lead SET score = %s WHERE id = %s", score, lead.id))
        lead.invalidate_recordset(["score", "forecast_category"])

    def test_category_follows_the_score_until_set(self):
        lead = self._opportunity(score=80)
        self.assertEqual(lead.forecast_category, "commit")
        self._set_score(lead, 60)
        self.assertEqual(lead.forecast_category, "best_case")
        self._set_score(lead, 10)
        self.assertEqual(lead.forecast_category, "pipeline")
        lead.with_user(self.user_salesman_own).forecast_category = "omitted"
        self._set_score(lead, 95)
        self.assertEqual(lead.forecast_category, "omitted", "the salesperson's choice stays")
        self.env.company.forecast_commit_score = 96
        self.assertEqual(lead.forecast_category_manual, "omitted")

    def test_company_thresholds(self):
        lead = self._opportunity(score=70)
        self.assertEqual(lead.forecast_category, "best_case")
        self.env.company.forecast_commit_score = 70
        lead.invalidate_recordset(["forecast_category"])
        self.assertEqual(lead.forecast_category, "commit")
        with self.assertRaises(ValidationError):
            self.env.company.forecast_best_case_score = 80

    def test_search_agrees_with_the_category(self):
        leads = self.env["crm.lead"]
        for score in (0, 49, 50, 74, 75, 100):
            for category in (False, "commit", "omitted"):
                lead = self._opportunity(score=score, forecast_category_manual=category)
                leads |= lead
        self.company_2.forecast_commit_score = 90
        leads |= self._opportunity(
            score=80, company_id=self.company_2.id, team_id=False, user_id=self.user_company_2.id
        )
        for category, _label in FORECAST_CATEGORIES:
            found = self.env["crm.lead"].search(
                [("id", "in", leads.ids), ("forecast_category", "=", category)]
            )
            self.assertEqual(
                found, leads.filtered(lambda lead, c=category: lead.forecast_category == c)
            )
            others = self.env["crm.lead"].search(
                [("id", "in", leads.ids), ("forecast_category", "!=", category)]
            )
            self.assertEqual(others, leads - found)

    def test_pushed_closing_is_counted_as_the_tracking_shows(self):
        today = fields.Date.today()
        lead = self._opportunity(date_deadline=today)
        self.env.cr.precommit.run()
        for deadline in (10, 4, 30, 30, None, 40):
            lead.date_deadline = deadline and today + timedelta(days=deadline)
            # Each change its own transaction, as in the web client: one tracking each.
            self.env.cr.precommit.run()
        self.assertEqual((lead.deadline_push_count, lead.deadline_pushed_days), (2, 10 + 26))
        changes = lead.message_ids.tracking_value_ids.filtered(
            lambda value: value.field_id.name == "date_deadline"
        )
        self.assertEqual(len(changes), 5)
        pushes = [
            (value.new_value_datetime - value.old_value_datetime).days
            for value in changes
            if value.old_value_datetime
            and value.new_value_datetime
            and value.new_value_datetime > value.old_value_datetime
        ]
        self.assertEqual((len(pushes), sum(pushes)), (2, 36))
        self.assertTrue(
            self.env["crm.lead"].search([("id", "=", lead.id), ("deadline_push_count", ">", 0)])
        )

    def test_a_won_deal_is_not_pushed(self):
        today = fields.Date.today()
        lead = self._opportunity(date_deadline=today, stage_id=self.stage_won.id)
        lead.date_deadline = today + timedelta(days=5)
        self.assertEqual(lead.deadline_push_count, 0)

    def test_nightly_rescorings_are_folded(self):
        """crm's nightly rewrite of every open deal's probability, and the module's
        rescoring, leave one figure row per key, equal to a recount."""
        today = fields.Date.today()
        leads = self.env["crm.lead"].concat(
            *(
                self._opportunity(score=10 * index, date_deadline=today + timedelta(days=index))
                for index in range(6)
            )
        )
        self.env.flush_all()
        self.env.cr.execute(
            SQL("UPDATE crm_lead SET probability = 3 WHERE id IN %s", tuple(leads.ids))
        )
        keys = SQL(", ").join(SQL.identifier(name) for name, _type in FIGURE_KEYS)
        for cron in ("_cron_update_automated_probabilities", "_cron_update_scores"):
            self.assertTrue(self._figure_key_repeats(keys), "deltas wait for the fold")
            getattr(self.env["crm.lead"], cron)()
            self.assertFalse(self._figure_key_repeats(keys), cron)
            self._assert_kept_figures_equal_a_recount()
            self.env["crm.lead"].create({"name": "Another delta", "type": "opportunity"})
            self.env.flush_all()

    def _figure_key_repeats(self, keys):
        self.env.flush_all()
        self.env.cr.execute(
            SQL("SELECT 1 FROM crm_pipeline_figure GROUP BY %s HAVING count(*) > 1", keys)
        )
        return bool(self.env.cr.rowcount)

    def test_passed_closing(self):
        yesterday = fields.Date.today() - timedelta(days=1)
        passed = self._opportunity(date_deadline=yesterday)
        won = self._opportunity(date_deadline=yesterday, stage_id=self.stage_won.id)
        future = self._opportunity(date_deadline=yesterday + timedelta(days=5))
        leads = passed | won | future
        self.assertEqual(leads.filtered("is_deadline_passed"), passed)
        self.assertEqual(
            self.env["crm.lead"].search(
                [("id", "in", leads.ids), ("is_deadline_passed", "=", True)]
            ),
            passed,
        )


@tagged("forecast", "post_install", "-at_install")
class TestForecastFigures(PipelineOptimizerCommon):
    """The forecast equals a count of the records, for each role and time zone."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["base.automation"].search([]).active = False
        cls.salespeople = [cls.user_salesman_own, cls.user_salesman_all, cls.user_sales_manager]
        cls.user_sales_manager.company_ids = [(4, cls.company_2.id)]
        cls.env["crm.team.revenue.target"].create(
            {
                "team_id": cls.sales_team.id,
                "date_from": fields.Date.today().replace(day=1) - relativedelta(months=1),
                "date_to": fields.Date.today().replace(day=1) + relativedelta(months=3, days=-1),
                "amount": 400000,
            }
        )

    def _make(self, deals):
        Lead = self.env["crm.lead"]
        today = fields.Date.today()
        made = Lead
        for user, team, days, score, category, probability, revenue, state, company in deals:
            company = (self.env.company, self.company_2)[company]
            lead = Lead.create(
                {
                    "name": "Forecast figure",
                    "type": "lead" if state == "lead" else "opportunity",
                    "user_id": (
                        self.salespeople[user]
                        if company == self.env.company
                        else self.user_company_2
                    ).id,
                    "team_id": (self.sales_team.id if company == self.env.company else False)
                    if team == 0
                    else False,
                    "company_id": company.id,
                    "date_deadline": today + timedelta(days=days),
                    "forecast_category_manual": category or False,
                    "expected_revenue": revenue or 0,
                    "stage_id": (self.stage_won if state == "won" else self.stage_proposal).id,
                }
            )
            if state == "lost":
                lead.action_set_lost()
            made |= lead
            self.env.flush_all()
            self.env.cr.execute(
                SQL(
                    "UPDATE crm_lead SET score = %s, probability = %s WHERE id = %s",
                    score,
                    100 if state == "won" else 0 if state == "lost" else probability,
                    lead.id,
                )
            )
        self.env.invalidate_all()
        return made

    def _expected(self, user, tz, leads):
        """The forecast recounted from the records the reader sees."""
        reader = self.env(user=user, context={"tz": tz})
        visible = (
            reader["crm.lead"].with_context(active_test=False).search([("id", "in", leads.ids)])
        )
        if not user.has_group("sales_team.group_sale_manager"):
            visible = visible.filtered(lambda lead: lead.user_id == user)
        today = fields.Date.context_today(reader["crm.lead"])
        start = today.replace(day=1)
        bounds = [(start, start + relativedelta(months=1))]
        bounds.append((bounds[0][1], bounds[0][1] + relativedelta(months=1)))
        calibration = {
            (row.company_id.id, row.bucket): row.likelihood
            for row in self.env["crm.lead.score.calibration"].search([])
        }
        passed = visible.filtered(
            lambda lead: (
                lead.active
                and lead.type == "opportunity"
                and not lead.stage_id.is_won
                and lead.date_deadline < today
            )
        )
        won_start, won_end = (
            reader["crm.pipeline.dashboard"]._with_reader_tz()._dashboard_period("month").current
        )
        won = visible.filtered(
            lambda lead: (
                lead.active
                and lead.stage_id.is_won
                and lead.date_closed
                and won_start <= lead.date_closed < won_end
            )
        )
        periods = [len(passed), (round(sum(won.mapped("expected_revenue")), 2), len(won))]
        for start_day, end_day in bounds:
            open_deals = visible.filtered(
                lambda lead, s=start_day, e=end_day: (
                    lead.active
                    and lead.type == "opportunity"
                    and not lead.stage_id.is_won
                    and s <= lead.date_deadline < e
                )
            )
            counted = open_deals.filtered(lambda lead: lead.forecast_category != "omitted")
            periods.append(
                {
                    "open": (round(sum(open_deals.mapped("expected_revenue")), 2), len(open_deals)),
                    "weighted_probability": round(
                        sum(lead.expected_revenue * lead.probability / 100 for lead in counted), 2
                    ),
                    "weighted_likelihood": round(
                        sum(
                            lead.expected_revenue
                            * calibration.get(
                                (lead.company_id.id, forecast.score_bucket(lead.score)),
                                min(lead.score, 100),
                            )
                            / 100
                            for lead in counted
                        ),
                        2,
                    ),
                    "categories": {
                        category: (
                            round(
                                sum(
                                    open_deals.filtered(
                                        lambda lead, c=category: lead.forecast_category == c
                                    ).mapped("expected_revenue")
                                ),
                                2,
                            ),
                            len(
                                open_deals.filtered(
                                    lambda lead, c=category: lead.forecast_category == c
                                )
                            ),
                        )
                        for category, _label in FORECAST_CATEGORIES
                    },
                }
            )
        return periods

    def _read(self, user, tz):
        data = (
            self.env["crm.pipeline.dashboard"]
            .with_user(user)
            .with_context(tz=tz)
            .get_forecast_data("month")
        )
        return data, [
            data["hygiene"]["passed"]["count"],
            (round(data["periods"][0]["won"]["amount"], 2), data["periods"][0]["won"]["count"]),
            *(
                {
                    "open": (round(period["open"]["amount"], 2), period["open"]["count"]),
                    "weighted_probability": round(period["weighted_probability"], 2),
                    "weighted_likelihood": round(period["weighted_likelihood"], 2),
                    "categories": {
                        category["name"]: (round(category["amount"], 2), category["count"])
                        for category in period["categories"]
                    },
                }
                for period in data["periods"]
            ),
        ]

    def _assert_forecast_equals_the_records(self, leads):
        for user in (self.user_salesman_own, self.user_salesman_all, self.user_sales_manager):
            for tz in TIME_ZONES:
                user.tz = tz
                data, read = self._read(user, tz)
                self.assertEqual(read, self._expected(user, tz, leads), (user.name, tz))
                for period in data["periods"]:
                    Lead = self.env["crm.lead"].with_user(user)
                    self.assertEqual(
                        Lead.search_count(period["open"]["domain"]), period["open"]["count"]
                    )
                    for category in period["categories"]:
                        self.assertEqual(Lead.search_count(category["domain"]), category["count"])
        self._assert_kept_figures_equal_a_recount()

    @settings(
        max_examples=FORECAST_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(deals=st.lists(deal_strategy, min_size=2, max_size=12))
    def test_forecast_equals_the_records(self, deals):
        with self.env.cr.savepoint(flush=True) as savepoint:
            leads = self._make(deals)
            self.env["crm.lead.score.calibration"]._calibrate()
            self._assert_forecast_equals_the_records(leads)
            # New thresholds count the company's forecast figures again.
            self.env.company.write({"forecast_commit_score": 60, "forecast_best_case_score": 30})
            self._assert_forecast_equals_the_records(leads)
            savepoint.rollback()
        self.env.invalidate_all()

    def test_target_gap_and_coverage(self):
        today = fields.Date.today()
        month = today.replace(day=1)
        in_month = (month + timedelta(days=2) - today).days  # this month, whatever the day
        self._make(
            [
                (2, 0, in_month, 90, None, 50, 100000, "open", 0),  # commit
                (2, 0, in_month, 10, "best_case", 20, 50000, "open", 0),
                (2, 0, in_month, 10, "omitted", 90, 70000, "open", 0),
            ]
        )
        won = self.env["crm.lead"].create(
            {
                "name": "Won this month",
                "type": "opportunity",
                "team_id": self.sales_team.id,
                "expected_revenue": 60000,
            }
        )
        won.stage_id = self.stage_won
        self.assertTrue(won.date_closed)
        data = (
            self.env["crm.pipeline.dashboard"]
            .with_user(self.user_sales_manager)
            .get_forecast_data("month", team_id=self.sales_team.id)
        )
        period = data["periods"][0]
        days_in_month = (month + relativedelta(months=1) - month).days
        target_days = (month + relativedelta(months=3) - (month - relativedelta(months=1))).days
        target = 400000 * days_in_month / target_days
        self.assertEqual(period["won"]["amount"], 60000)
        self.assertAlmostEqual(period["target"], target, delta=1)
        self.assertAlmostEqual(period["gap"], target - 60000, delta=1)
        self.assertAlmostEqual(period["commit_coverage"], 100000 / (target - 60000), places=4)
        self.assertAlmostEqual(period["weighted_probability"], 50000 + 10000)
        commit = next(c for c in period["categories"] if c["name"] == "commit")
        self.assertEqual((commit["amount"], commit["count"]), (100000, 1))

    def test_hygiene_lists_passed_and_pushed_deals(self):
        today = fields.Date.today()
        passed, pushed = self._make(
            [
                (0, 0, -10, 0, None, 10, 1000, "open", 0),
                (0, 0, 2, 0, None, 10, 1000, "open", 0),
            ]
        )
        pushed.date_deadline = today + timedelta(days=20)
        hidden = self._make([(1, 0, -3, 0, None, 10, 1000, "open", 0)])
        data = (
            self.env["crm.pipeline.dashboard"].with_user(self.user_salesman_own).get_forecast_data()
        )
        hygiene = data["hygiene"]
        self.assertEqual([deal["id"] for deal in hygiene["passed"]["deals"]], passed.ids)
        self.assertEqual(hygiene["passed"]["count"], 1, "a colleague's deal is not counted")
        self.assertNotIn(hidden.id, [deal["id"] for deal in hygiene["passed"]["deals"]])
        self.assertEqual(
            [(d["id"], d["pushes"], d["days_pushed"]) for d in hygiene["pushed"]["deals"]],
            [(pushed.id, 1, 18)],
        )


@tagged("forecast", "post_install", "-at_install")
class TestScoreCalibration(PipelineOptimizerCommon):
    def _closed(self, score, won, closed_days_ago, snapshot=None):
        lead = self.env["crm.lead"].create(
            {
                "name": "Closed deal",
                "type": "opportunity",
                "team_id": self.sales_team.id,
                "stage_id": (self.stage_won if won else self.stage_qualified).id,
            }
        )
        if not won:
            lead.action_set_lost()
        self.env.flush_all()
        closed = fields.Datetime.now() - timedelta(days=closed_days_ago)
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lead SET score = %s, date_closed = %s WHERE id = %s",
                score,
                closed,
                lead.id,
            )
        )
        if snapshot is not None:
            score_then, probability_then = snapshot
            self.env["crm.lead.score.snapshot"].create(
                {
                    "lead_id": lead.id,
                    "company_id": lead.company_id.id,
                    "date": (closed - timedelta(days=45)).date().replace(day=1),
                    "score": score_then,
                    "probability": probability_then,
                }
            )
        return lead

    def test_buckets_count_the_closed_deals_by_the_score_a_month_before(self):
        # Read a month before: 85 (won), 85 (won), 15 (lost); at closing: 55 won.
        self._closed(score=10, won=True, closed_days_ago=20, snapshot=(85, 70))
        self._closed(score=90, won=True, closed_days_ago=60, snapshot=(85, 40))
        self._closed(score=90, won=False, closed_days_ago=100, snapshot=(15, 60))
        self._closed(score=55, won=True, closed_days_ago=5)
        self._closed(score=55, won=False, closed_days_ago=500)  # over a year ago: left out
        Calibration = self.env["crm.lead.score.calibration"]
        Calibration._calibrate()
        rows = {
            row.bucket: (row.closed_count, row.won_count, row.month_before_count)
            for row in Calibration.search([("company_id", "=", self.env.company.id)])
        }
        self.assertEqual(rows, {8: (2, 2, 2), 1: (1, 0, 1), 5: (1, 1, 0)})
        bucket_8 = Calibration.search(
            [("company_id", "=", self.env.company.id), ("bucket", "=", 8)]
        )
        self.assertEqual(bucket_8.score_range, "80–89")
        self.assertAlmostEqual(bucket_8.likelihood, 75.0)
        self.assertEqual(bucket_8.win_rate, 100.0)
        company = self.env.company
        self.assertEqual(company.score_calibration_deals, 4)
        self.assertEqual(company.score_calibration_month_before, 3)
        # Month before: the score ranks both won above the lost; crm's probability does not.
        self.assertEqual(company.score_auc, 1.0)
        self.assertEqual(company.crm_probability_auc, 0.5)
        expected_brier = ((0.75 - 1) ** 2 * 2 + (1 / 3 - 0) ** 2) / 3
        self.assertAlmostEqual(company.score_brier, expected_brier, places=3)
        self.assertAlmostEqual(
            company.crm_probability_brier, ((0.3**2) + 0.6**2 + 0.6**2) / 3, places=3
        )
        data = (
            self.env["crm.pipeline.dashboard"].with_user(self.user_salesman_own).get_forecast_data()
        )
        self.assertEqual(
            [bucket["range"] for bucket in data["calibration"]["buckets"]],
            ["10–19", "50–59", "80–89"],
        )

    def test_snapshot_is_taken_once_a_month(self):
        lead = self.env["crm.lead"].create(
            {"name": "Open deal", "type": "opportunity", "team_id": self.sales_team.id}
        )
        Snapshot = self.env["crm.lead.score.snapshot"]
        Snapshot._take_snapshot()
        Snapshot._take_snapshot()
        snapshots = Snapshot.search([("lead_id", "=", lead.id)])
        self.assertEqual(len(snapshots), 1)
        self.assertEqual(snapshots.date, fields.Date.today().replace(day=1))
        won = self.env["crm.lead"].create(
            {"name": "Won deal", "type": "opportunity", "stage_id": self.stage_won.id}
        )
        Snapshot._take_snapshot()
        self.assertFalse(
            Snapshot.search([("lead_id", "=", won.id)]), "closed deals are not forecast"
        )


@tagged("forecast", "post_install", "-at_install")
class TestForecastAccuracy(PipelineOptimizerCommon):
    def test_snapshot_once_a_period_and_accuracy_of_the_ended_ones(self):
        Snapshot = self.env["crm.team.forecast.snapshot"]
        today = fields.Date.today()
        self.env["crm.lead"].create(
            {
                "name": "Committed this month",
                "type": "opportunity",
                "team_id": self.sales_team.id,
                "user_id": self.user_salesman_own.id,
                "expected_revenue": 30000,
                "probability": 50,
                "forecast_category_manual": "commit",
                "date_deadline": today.replace(day=1),
            }
        )
        taken = Snapshot._cron_take_snapshots().filtered(lambda s: s.team_id == self.sales_team)
        self.assertEqual(sorted(taken.mapped("period")), ["month", "quarter"])
        month = taken.filtered(lambda snapshot: snapshot.period == "month")
        self.assertEqual((month.commit, month.weighted_probability), (30000, 15000))
        self.assertFalse(
            Snapshot._cron_take_snapshots().filtered(lambda s: s.team_id == self.sales_team),
            "once a period",
        )
        # Two ended months, forecast 10,000 and 20,000; won 12,000 and nothing.
        first = today.replace(day=1)
        for months_back, weighted in ((2, 10000), (1, 20000)):
            start = first - relativedelta(months=months_back)
            Snapshot.create(
                {
                    "team_id": self.sales_team.id,
                    "period": "month",
                    "date_start": start,
                    "date_end": start + relativedelta(months=1),
                    "weighted": weighted,
                    "commit": weighted / 2,
                }
            )
        won = self.env["crm.lead"].create(
            {
                "name": "Won two months ago",
                "type": "opportunity",
                "team_id": self.sales_team.id,
                "expected_revenue": 12000,
            }
        )
        won.stage_id = self.stage_won
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lead SET date_closed = %s WHERE id = %s",
                fields.Datetime.to_datetime(first - relativedelta(months=2, days=-3)),
                won.id,
            )
        )
        self.env.invalidate_all()
        manager = self.env["crm.pipeline.dashboard"].with_user(self.user_sales_manager)
        accuracy = manager.get_forecast_data("month", team_id=self.sales_team.id)["accuracy"]
        self.assertEqual(
            [(row["weighted"], row["commit"], row["actual"]) for row in accuracy],
            [(10000, 5000, 12000), (20000, 10000, 0)],
        )
        self.assertAlmostEqual(accuracy[0]["error"], -100 * 2000 / 12000)
        self.assertIsNone(accuracy[1]["error"])
        own = self.env["crm.pipeline.dashboard"].with_user(self.user_salesman_own)
        self.assertEqual(own.get_forecast_data("month")["accuracy"], [], "a manager's view")
