from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged
from odoo.tools import convert_file, mute_logger

from .common import PipelineOptimizerCommon


@tagged("stages", "at_install", "-post_install")
class TestCrmStageSeed(PipelineOptimizerCommon):
    """The recommended B2B pipeline as the install leaves it."""

    def test_seeded_stages_have_expected_durations(self):
        expected = {
            self.stage_new: (0, 2, "First contact made."),
            self.stage_qualified: (3, 7, "Need and budget confirmed; discovery call done."),
            self.stage_proposal: (5, 14, "Proposal delivered."),
            self.stage_negotiation: (7, 21, "Scope and price agreed."),
            self.stage_won: (0, 0, "Contract signed."),
        }
        for stage, (low, high, criteria) in expected.items():
            with self.subTest(stage=stage.name):
                self.assertEqual(stage.expected_days_min, low)
                self.assertEqual(stage.expected_days_max, high)
                self.assertEqual(stage.exit_criteria, criteria)

    def test_seed_orders_stages_as_a_b2b_pipeline(self):
        seeded = self.stage_new | self.stage_qualified | self.stage_proposal
        seeded |= self.stage_negotiation | self.stage_won
        self.assertEqual(
            seeded.sorted().mapped("name"),
            ["New", "Qualified", "Proposal", "Negotiation", "Won"],
        )

    def test_seed_reuses_crm_default_stages(self):
        Stage = self.env["crm.stage"].with_context(active_test=False)
        for name in ("New", "Qualified", "Won"):
            with self.subTest(name=name):
                self.assertEqual(Stage.search_count([("name", "=", name)]), 1)
        self.assertFalse(Stage.search_count([("name", "=", "Proposition")]))
        self.assertTrue(self.stage_won.is_won)

    def test_module_upgrade_keeps_consultant_edits(self):
        self.stage_negotiation.write(
            {"expected_days_max": 30, "exit_criteria": "Legal review passed."}
        )
        self.stage_new.write({"name": "Inbox", "expected_days_max": 1})
        convert_file(
            self.env,
            "crm_pipeline_optimizer",
            "data/crm_stage_data.xml",
            {},
            mode="update",
            noupdate=True,
        )
        self.assertEqual(self.stage_negotiation.expected_days_max, 30)
        self.assertEqual(self.stage_negotiation.exit_criteria, "Legal review passed.")
        self.assertEqual(self.stage_new.name, "Inbox")
        self.assertEqual(self.stage_new.expected_days_max, 1)

    def test_seed_does_not_recreate_a_deleted_crm_stage(self):
        self.env["crm.lead"].with_context(active_test=False).search(
            [("stage_id", "=", self.stage_qualified.id)]
        ).write({"stage_id": self.stage_new.id})
        self.stage_qualified.unlink()
        convert_file(
            self.env,
            "crm_pipeline_optimizer",
            "data/crm_stage_data.xml",
            {},
            mode="update",
            noupdate=True,
        )
        self.assertFalse(self.env.ref("crm.stage_lead2", raise_if_not_found=False))


@tagged("stages", "at_install", "-post_install")
class TestCrmStageExpectedDays(PipelineOptimizerCommon):
    def test_min_above_max_is_refused(self):
        with self.assertRaisesRegex(ValidationError, "cannot exceed the maximum"):
            self.stage_proposal.write({"expected_days_min": 15, "expected_days_max": 14})

    def test_negative_days_are_refused(self):
        with self.assertRaisesRegex(ValidationError, "cannot be negative"):
            self.stage_proposal.write({"expected_days_min": -1})

    def test_min_equal_to_max_is_accepted(self):
        self.stage_proposal.write({"expected_days_min": 10, "expected_days_max": 10})
        self.assertEqual(self.stage_proposal.expected_duration_display, "10 days")

    def test_min_without_max_means_no_limit(self):
        stage = self.env["crm.stage"].create(
            {"name": "Pilot", "expected_days_min": 30, "expected_days_max": 0}
        )
        self.assertFalse(stage.expected_duration_display)

    def test_expected_duration_display(self):
        self.assertEqual(self.stage_negotiation.expected_duration_display, "7–21 days")

    def test_refused_write_changes_nothing(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            (self.stage_qualified | self.stage_proposal).write({"expected_days_min": 10})
        self.assertEqual(self.stage_qualified.expected_days_min, 3)
        self.assertEqual(self.stage_proposal.expected_days_min, 5)


@tagged("stages", "at_install", "-post_install")
class TestCrmStageAccess(PipelineOptimizerCommon):
    """Salespeople read the stage fields; only sales administrators change them."""

    def test_salespeople_read_stage_fields(self):
        for user in (self.user_salesman_own, self.user_salesman_all):
            with self.subTest(user=user.login):
                stage = self.stage_negotiation.with_user(user)
                values = stage.read(["expected_days_min", "expected_days_max", "exit_criteria"])[0]
                self.assertEqual(values["expected_days_max"], 21)
                self.assertEqual(values["exit_criteria"], "Scope and price agreed.")

    @mute_logger("odoo.addons.base.models.ir_model")
    def test_salespeople_cannot_change_stage_fields(self):
        for user in (self.user_salesman_own, self.user_salesman_all):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.stage_negotiation.with_user(user).write({"expected_days_max": 60})
        self.assertEqual(self.stage_negotiation.expected_days_max, 21)

    def test_sales_manager_changes_stage_fields(self):
        self.stage_negotiation.with_user(self.user_sales_manager).write(
            {"expected_days_max": 28, "exit_criteria": "Signed quote received."}
        )
        self.assertEqual(self.stage_negotiation.expected_days_max, 28)
        self.assertEqual(self.stage_negotiation.exit_criteria, "Signed quote received.")
