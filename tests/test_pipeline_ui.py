from odoo.tests import HttpCase, tagged

from .common import PipelineOptimizerCommon


@tagged("post_install", "-at_install")
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
