from dateutil.relativedelta import relativedelta
from psycopg2 import IntegrityError

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import PipelineDashboardCommon


@tagged("dashboard", "post_install", "-at_install")
class TestPipelineDashboard(PipelineDashboardCommon):
    def test_manager_kpis_agree_with_the_records(self):
        data = self.Dashboard.with_user(self.user_sales_manager).get_dashboard_data(
            "month", team_id=self.sales_team.id
        )
        self.assertEqual(data["scope"], "company")
        expected = self._expected(self.team_leads, 20000)
        got = {name: data["kpis"][name]["value"] for name in expected}
        self.assertEqual(got, expected)
        # The figures of this data set, spelled out: 9 created, 7 opportunities; won 2 of 5.
        self.assertEqual(got["conversion_rate"], 77.78)
        self.assertEqual(got["win_rate"], 40.0)
        self.assertEqual(got["deal_size"], 20000.0)
        self.assertEqual(got["coverage"], 3.0)
        self.assertEqual(got["activity_to_close"], 1.0)
        self.assertEqual(data["kpis"]["win_rate"]["band"], (20, 40))
        self.assertEqual(data["target"], 20000)

    def test_every_number_drills_down_to_its_records(self):
        data = self.Dashboard.with_user(self.user_sales_manager).get_dashboard_data(
            "month", team_id=self.sales_team.id
        )
        Lead = self.env["crm.lead"].with_user(self.user_sales_manager)
        for name, records in (
            ("won_count", self.won),
            ("lost_count", self.lost),
            ("open_count", self.open),
            ("created_count", self.team_leads),
        ):
            with self.subTest(kpi=name):
                found = Lead.with_context(active_test=False).search(data["kpis"][name]["domain"])
                self.assertEqual(found, records.with_user(self.user_sales_manager))
        by_stage = {row["label"]: row for row in data["charts"]["pipeline_by_stage"]}
        self.assertEqual(by_stage["Proposal"]["amount"], 40000)
        self.assertEqual(Lead.search(by_stage["Negotiation"]["domain"]).name, "Open 2")
        [reason] = data["charts"]["lost_by_reason"]
        self.assertEqual((reason["label"], reason["count"]), ("Too expensive", 3))

    def test_salesperson_sees_own_numbers(self):
        data = self.Dashboard.with_user(self.user_salesman_own).get_dashboard_data("month")
        self.assertEqual(data["scope"], "own")
        mine = self.team_leads.filtered(lambda lead: lead.user_id == self.user_salesman_own)
        # Their share of the team target: the team has two members.
        expected = self._expected(mine, 10000)
        self.assertEqual({name: data["kpis"][name]["value"] for name in expected}, expected)
        self.assertEqual(data["kpis"]["won_count"]["value"], 1)
        self.assertEqual(data["kpis"]["open_amount"]["value"], 40000)
        activities = {row["label"]: row for row in data["charts"]["activities_by_salesperson"]}
        self.assertEqual(set(activities), {self.user_salesman_own.name})

    def test_activities_planned_are_those_due_in_the_period(self):
        deal = self.open[0]
        first_day = self.today.replace(day=1)
        for due in (
            first_day - relativedelta(days=1),
            self.today,
            first_day + relativedelta(months=1),
        ):
            deal.activity_schedule(
                "mail.mail_activity_data_todo", date_deadline=due, user_id=deal.user_id.id
            )
        data = self.Dashboard.with_user(self.user_salesman_own).get_dashboard_data("month")
        [row] = data["charts"]["activities_by_salesperson"]
        # Won 1's call was done this month; of the three to-dos only this month's counts.
        self.assertEqual((row["planned"], row["done"]), (1, 1))

    def test_team_leader_sees_their_teams(self):
        self.sales_team.user_id = self.user_salesman_all
        data = self.Dashboard.with_user(self.user_salesman_all).get_dashboard_data("month")
        self.assertEqual(data["scope"], "team")
        self.assertEqual([team["id"] for team in data["teams"]], self.sales_team.ids)
        self.assertEqual(data["kpis"]["won_count"]["value"], 2)
        other_team = self.env["crm.team"].create({"name": "Not theirs"})
        with self.assertRaises(UserError):
            self.Dashboard.with_user(self.user_salesman_all).get_dashboard_data(
                "month", team_id=other_team.id
            )

    def test_other_company_sees_nothing_of_ours(self):
        data = self.Dashboard.with_user(self.user_company_2).get_dashboard_data("month")
        self.assertEqual(data["kpis"]["won_count"]["value"], 0)
        self.assertEqual(data["kpis"]["open_amount"]["value"], 0)

    def test_not_for_non_sales_users(self):
        employee = self.env["res.users"].create(
            {
                "name": "Eve Employee",
                "login": "eve_employee",
                "groups_id": [(6, 0, [self.env.ref("base.group_user").id])],
            }
        )
        with self.assertRaises(AccessError):
            self.Dashboard.with_user(employee).get_dashboard_data("month")
        with self.assertRaises(UserError):
            self.Dashboard.get_dashboard_data("fortnight")

    def test_trend_against_previous_period(self):
        data = self.Dashboard.with_user(self.user_sales_manager).get_dashboard_data(
            "month", team_id=self.sales_team.id
        )
        self.assertEqual(data["kpis"]["won_count"]["previous"], 0)
        self.assertIsNone(data["kpis"]["win_rate"]["previous"])

    @users("pipeline_sales_manager")
    @mute_logger("odoo.models.unlink")
    def test_query_count_does_not_grow_with_the_data(self):
        Dashboard = self.env["crm.pipeline.dashboard"]
        Dashboard.get_dashboard_data("month")  # warms the caches
        with self.assertQueryCount(12):
            Dashboard.get_dashboard_data("month", team_id=self.sales_team.id)
        self.env.invalidate_all()
        with self.assertQueryCount(23):
            Dashboard.get_dashboard_data("month", team_id=self.sales_team.id)
        self.env["crm.lead"].create(
            [
                {
                    "name": f"More {i}",
                    "type": "opportunity",
                    "team_id": self.sales_team.id,
                    "user_id": self.user_salesman_own.id,
                    "expected_revenue": 1000,
                }
                for i in range(30)
            ]
        )
        self.env.invalidate_all()
        with self.assertQueryCount(23):
            Dashboard.get_dashboard_data("month", team_id=self.sales_team.id)
        with self.assertQueryCount(12):
            Dashboard.get_dashboard_data("month", team_id=self.sales_team.id)


@tagged("dashboard", "post_install", "-at_install")
class TestRevenueTargets(PipelineDashboardCommon):
    def test_targets_are_validated(self):
        Target = self.env["crm.team.revenue.target"]
        first = self.today.replace(day=1)
        with self.assertRaises(ValidationError), self.cr.savepoint():
            Target.create(
                {"team_id": self.sales_team.id, "date_from": first, "date_to": first, "amount": 5}
            )
        with self.assertRaises(ValidationError), self.cr.savepoint():
            Target.create(
                {
                    "team_id": self.sales_team.id,
                    "date_from": first + relativedelta(months=2),
                    "date_to": first + relativedelta(months=1),
                    "amount": 5,
                }
            )
        with self.assertRaises(IntegrityError), self.cr.savepoint(), mute_logger("odoo.sql_db"):
            Target.create(
                {
                    "team_id": self.sales_team.id,
                    "date_from": first + relativedelta(months=3),
                    "date_to": first + relativedelta(months=4),
                    "amount": -5,
                }
            )

    def test_target_prorated_to_the_period(self):
        # A quarterly target of 90,000 counts 30,000 a month, whichever month.
        self.target.unlink()
        quarter_start = self.today.replace(month=(self.today.month - 1) // 3 * 3 + 1, day=1)
        self.env["crm.team.revenue.target"].create(
            {
                "team_id": self.sales_team.id,
                "date_from": quarter_start,
                "date_to": quarter_start + relativedelta(months=3, days=-1),
                "amount": 90000,
            }
        )
        data = self.Dashboard.with_user(self.user_sales_manager).get_dashboard_data(
            "quarter", team_id=self.sales_team.id
        )
        self.assertAlmostEqual(data["target"], 90000)
        month = self.Dashboard.with_user(self.user_sales_manager).get_dashboard_data(
            "month", team_id=self.sales_team.id
        )
        self.assertAlmostEqual(month["target"], 30000, delta=3000)

    def test_rights(self):
        Target = self.env["crm.team.revenue.target"]
        self.assertTrue(Target.with_user(self.user_salesman_own).search([]))
        with self.assertRaises(AccessError):
            Target.with_user(self.user_salesman_all).create(
                {
                    "team_id": self.sales_team.id,
                    "date_from": self.today + relativedelta(years=1),
                    "date_to": self.today + relativedelta(years=1, months=1),
                    "amount": 1,
                }
            )
        self.sales_team.company_id = self.company_main
        self.assertFalse(Target.with_user(self.user_company_2).search([]))


@tagged("dashboard", "post_install", "-at_install")
class TestPipelineHealthReport(PipelineDashboardCommon):
    def test_report_content(self):
        overdue = self.open.filtered(lambda lead: lead.stage_id == self.stage_negotiation)
        self._backdate(overdue, stage_days=30)
        report = self.env.ref("crm_pipeline_optimizer.action_report_pipeline_health")
        html = (
            report.with_user(self.user_sales_manager)
            ._render_qweb_html(report.id, self.sales_team.ids)[0]
            .decode()
        )
        self.assertIn("Pipeline health: <span>Pipeline Team</span>", html)
        self.assertIn("Win rate", html)
        self.assertIn("40.0 %", html)
        overdue_table = html.split("o_pipeline_health_overdue")[1].split("</table>")[0]
        self.assertIn("Open 2", overdue_table)
        self.assertNotIn("Open 1", overdue_table)
        top_table = html.split("o_pipeline_health_top")[1]
        self.assertIn("Open 1", top_table)

    def test_report_charts_pipeline_by_stage_and_won_against_target(self):
        report = self.env.ref("crm_pipeline_optimizer.action_report_pipeline_health")
        health = self.sales_team.with_user(self.user_sales_manager)._pipeline_health_data()
        stages = health["stage_bars"]
        self.assertTrue(stages)
        self.assertEqual(max(bar["percent"] for bar in stages), 100.0)
        won, target = health["target_bars"]
        won_amount = sum(self.won.mapped("expected_revenue"))
        self.assertGreater(won_amount, self.target.amount)
        self.assertEqual(won["percent"], 100.0, "won beats the target: the longer bar")
        self.assertEqual(target["percent"], round(100 * self.target.amount / won_amount, 1))
        html = (
            report.with_user(self.user_sales_manager)
            ._render_qweb_html(report.id, self.sales_team.ids)[0]
            .decode()
        )
        target_chart = html.split("o_pipeline_health_target_bars")[1].split("</table>")[0]
        self.assertEqual(target_chart.count("o_pipeline_health_bar"), 2)
        self.assertIn("width: 100.0%", target_chart)
        self.assertNotIn("No revenue target for this period.", html)
        # The forecast: this period and the next, each with its five bars, the target's
        # the team's revenue target prorated to the period.
        this_period, _next_period = health["forecast"]
        forecast = self.env["crm.pipeline.dashboard"].with_user(self.user_sales_manager)
        data = forecast.get_forecast_data("month", team_id=self.sales_team.id)["periods"][0]
        self.assertEqual(
            [bar["label"] for bar in this_period["bars"]],
            [
                "Won so far",
                "Commit",
                "Weighted by score likelihood",
                "Weighted by probability",
                "Target",
            ],
        )
        longest = max(
            data["won"]["amount"],
            data["target"],
            data["weighted_likelihood"],
            data["weighted_probability"],
            data["categories"][0]["amount"],
        )
        self.assertEqual(
            this_period["bars"][-1]["percent"], round(100 * data["target"] / longest, 1)
        )
        forecast_charts = html.split("o_pipeline_health_forecast_bars")[1:]
        self.assertEqual(len(forecast_charts), 2)
        self.assertEqual(forecast_charts[0].split("</table>")[0].count("o_pipeline_health_bar"), 5)
        self.target.unlink()
        html = report._render_qweb_html(report.id, self.sales_team.ids)[0].decode()
        self.assertIn("No revenue target for this period.", html)
        self.env["res.lang"]._activate_lang("ar_001")
        html_ar = (
            report.with_user(self.user_sales_manager)
            .with_context(lang="ar_001")
            ._render_qweb_html(report.id, self.sales_team.ids)[0]
            .decode()
        )
        self.assertIn('dir="rtl"', html_ar, "the bars grow from the right in Arabic")

    def test_report_renders_to_pdf(self):
        report = self.env.ref("crm_pipeline_optimizer.action_report_pipeline_health")
        with mute_logger("odoo.addons.base.models.ir_actions_report"):
            pdf, kind = report.with_context(force_report_rendering=True)._render_qweb_pdf(
                report.id, self.sales_team.ids
            )
        self.assertEqual(kind, "pdf")
        self.assertTrue(pdf.startswith(b"%PDF"))
        self.assertGreater(len(pdf), 5000)
