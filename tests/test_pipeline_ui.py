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

    def test_stage_exit_criteria_on_pipeline_kanban(self):
        self.start_tour(
            "/odoo/crm",
            "crm_pipeline_optimizer_stage_tooltip",
            login=self.user_salesman_own.login,
        )
