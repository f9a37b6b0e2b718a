from datetime import timedelta

from dateutil.relativedelta import relativedelta

from odoo import fields
from odoo.tests import HttpCase, tagged

from .common import PipelineDashboardCommon, PipelineOptimizerCommon


@tagged("ui", "post_install", "-at_install")
class TestPipelineUi(HttpCase, PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["crm.lead"].create(
            {
                "name": "Tour opportunity in negotiation",
                "type": "opportunity",
                "user_id": cls.user_salesman_own.id,
                "team_id": cls.sales_team.id,
                "stage_id": cls.stage_negotiation.id,
            }
        )

    def test_salesperson_qualifies_a_lead_and_sees_its_score(self):
        lead = self.env["crm.lead"].create(
            {
                "name": "Tour scored deal",
                "type": "opportunity",
                "user_id": self.user_salesman_own.id,
                "team_id": self.sales_team.id,
                "stage_id": self.stage_qualified.id,
            }
        )
        # No closed history in this database: the score is the qualification alone.
        self.env["crm.lead.scoring.factor"].search([]).unlink()
        lead._update_scores()
        self.start_tour(
            "/odoo/crm",
            "crm_pipeline_optimizer_lead_scoring",
            login=self.user_salesman_own.login,
        )
        self.assertEqual(lead.score, 55)
        self.assertTrue(lead.is_budget_confirmed and lead.has_decision_maker)
        self.assertEqual(lead.priority, "2")

    def test_stage_exit_criteria_on_pipeline_kanban(self):
        self.start_tour(
            "/odoo/crm",
            "crm_pipeline_optimizer_stage_tooltip",
            login=self.user_salesman_own.login,
        )

    def test_merge_from_the_action_menu_and_undo(self):
        leads = self.env["crm.lead"].create(
            [
                {
                    "name": name,
                    "type": "opportunity",
                    "email_from": "twin@example.com",
                    "user_id": self.user_salesman_all.id,
                    "team_id": self.sales_team.id,
                }
                for name in ("Tour twin A", "Tour twin B", "Tour twin C")
            ]
        )
        self.start_tour(
            "/odoo/crm", "crm_pipeline_optimizer_merge_undo", login=self.user_salesman_all.login
        )
        self.assertEqual(len(leads.exists()), 3)
        log = self.env["crm.lead.merge.log"].search([("master_id", "in", leads.ids)])
        self.assertEqual(log.state, "undone")

    def test_import_merges_a_row_into_the_lead_it_duplicates(self):
        existing = self.env["crm.lead"].create(
            {
                "name": "Existing Acme deal",
                "type": "opportunity",
                "contact_name": "John Smith",
                "email_from": "john.smith12@acme12.example.com",
                "user_id": self.user_salesman_all.id,
                "team_id": self.sales_team.id,
            }
        )
        self.start_tour(
            "/odoo/crm",
            "crm_pipeline_optimizer_import_duplicates",
            login=self.user_salesman_all.login,
        )
        self.assertEqual(existing.phone, "+1 202 555 0123")
        self.assertFalse(self.env["crm.lead"].search([("name", "=", "Acme again")]))
        self.assertTrue(self.env["crm.lead"].search([("name", "=", "Brand new")]))

    def test_kanban_card_shows_stage_clock_stale_and_score(self):
        Lead = self.env["crm.lead"]
        values = {
            "type": "opportunity",
            "user_id": self.user_salesman_own.id,
            "team_id": self.sales_team.id,
            "stage_id": self.stage_negotiation.id,
        }
        stuck = Lead.create({**values, "name": "Tour stuck deal", "is_budget_confirmed": True})
        Lead.create({**values, "name": "Tour fresh deal"})
        # No closed history: the score is the qualification alone (budget confirmed: 30).
        self.env["crm.lead.scoring.factor"].search([]).unlink()
        stuck._update_scores()
        self._backdate(stuck, stage_days=30, idle_days=10)
        self.start_tour(
            "/odoo/crm", "crm_pipeline_optimizer_kanban_card", login=self.user_salesman_own.login
        )

    def test_kanban_gate_warns_blocks_and_counts_the_checks(self):
        Lead = self.env["crm.lead"]
        values = {
            "type": "opportunity",
            "user_id": self.user_salesman_own.id,
            "team_id": self.sales_team.id,
        }
        gate = Lead.create(
            {
                **values,
                "name": "Tour gate deal",
                "stage_id": self.stage_qualified.id,
                "is_budget_confirmed": True,
            }
        )
        Lead.create(
            {
                **values,
                "name": "Tour ready deal",
                "stage_id": self.stage_negotiation.id,
                "is_scope_price_agreed": True,
            }
        )
        blocked = Lead.create(
            {**values, "name": "Tour blocked deal", "stage_id": self.stage_proposal.id}
        )
        self.stage_proposal.exit_gate = "block"
        self.start_tour(
            "/odoo/crm", "crm_pipeline_optimizer_exit_criteria", login=self.user_salesman_own.login
        )
        self.assertEqual(gate.stage_id, self.stage_proposal)
        self.assertTrue(gate.exit_criteria_skipped)
        self.assertIn(
            "Decision maker identified",
            gate.message_ids.filtered(lambda message: "exit criteria" in message.body).body,
        )
        self.assertEqual(blocked.stage_id, self.stage_proposal)
        self.assertFalse(blocked.exit_criteria_skipped)


@tagged("ui", "post_install", "-at_install")
class TestPipelineDashboardUi(HttpCase, PipelineDashboardCommon):
    def test_salesperson_dashboard(self):
        self.start_tour(
            "/odoo/action-crm_pipeline_optimizer.action_crm_pipeline_dashboard",
            "crm_pipeline_optimizer_dashboard_salesperson",
            login=self.user_salesman_own.login,
        )

    def test_manager_dashboard(self):
        self.start_tour(
            "/odoo/action-crm_pipeline_optimizer.action_crm_pipeline_dashboard",
            "crm_pipeline_optimizer_dashboard_manager",
            login=self.user_sales_manager.login,
        )


@tagged("ui", "post_install", "-at_install")
class TestForecastUi(HttpCase, PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        today = fields.Date.today()
        month = today.replace(day=1)
        cls.team = cls.env["crm.team"].create(
            {
                "name": "Forecast Tour Team",
                "user_id": cls.user_sales_manager.id,
                "member_ids": [(6, 0, cls.user_salesman_own.ids)],
            }
        )
        cls.env["crm.team.revenue.target"].create(
            {
                "team_id": cls.team.id,
                "date_from": month,
                "date_to": month + relativedelta(months=1, days=-1),
                "amount": 200000,
            }
        )
        values = {
            "type": "opportunity",
            "team_id": cls.team.id,
            "user_id": cls.user_salesman_own.id,
            "date_deadline": month + timedelta(days=2),
        }
        cls.env["crm.lead"].create(
            [
                {
                    **values,
                    "name": "Tour committed deal",
                    "expected_revenue": 100000,
                    "probability": 50,
                    "forecast_category_manual": "commit",
                },
                {
                    **values,
                    "name": "Tour best case deal",
                    "expected_revenue": 50000,
                    "probability": 20,
                    "forecast_category_manual": "best_case",
                },
                {
                    **values,
                    "name": "Tour late deal",
                    "expected_revenue": 0,
                    "probability": 0,
                    "forecast_category_manual": "omitted",
                    "date_deadline": month - timedelta(days=3),
                },
            ]
        )

    def test_manager_reads_the_forecast_and_drills_down(self):
        self.start_tour(
            "/odoo/action-crm_pipeline_optimizer.action_crm_pipeline_dashboard",
            "crm_pipeline_optimizer_forecast_manager",
            login=self.user_sales_manager.login,
        )

    def test_salesperson_sets_a_deal_category(self):
        deal = self.env["crm.lead"].search([("name", "=", "Tour best case deal")])
        self.start_tour(
            "/odoo/crm",
            "crm_pipeline_optimizer_forecast_category",
            login=self.user_salesman_own.login,
        )
        self.assertEqual(deal.forecast_category_manual, "commit")
        self.assertEqual(deal.forecast_category, "commit")
