from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import PipelineOptimizerCommon


@tagged("post_install", "-at_install")
class TestExitCriteria(PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Lead = cls.env["crm.lead"]
        cls.Check = cls.env["crm.stage.exit.check"]
        # The seeded checks, on warn, are what these tests move deals past.
        cls.first_contact = cls.env.ref("crm_pipeline_optimizer.exit_check_first_contact")
        cls.budget = cls.env.ref("crm_pipeline_optimizer.exit_check_budget_confirmed")
        cls.decision_maker = cls.env.ref("crm_pipeline_optimizer.exit_check_decision_maker")
        cls.proposal_sent = cls.env.ref("crm_pipeline_optimizer.exit_check_proposal_sent")
        cls.scope_price = cls.env.ref("crm_pipeline_optimizer.exit_check_scope_price_agreed")

    def _deal(self, stage, user=None, **values):
        return self.Lead.create(
            {
                "name": values.pop("name", "Exit criteria deal"),
                "type": "opportunity",
                "team_id": self.sales_team.id,
                "user_id": (user or self.user_salesman_own).id,
                "stage_id": stage.id,
                **values,
            }
        )

    def _gate_notes(self, lead):
        return lead.message_ids.filtered(
            lambda message: (
                "without its exit criteria" in message.body or "past the stage gate" in message.body
            )
        )

    # ------------------------------------------------------------
    # The checklist
    # ------------------------------------------------------------

    def test_checklist_ticks_the_checks_the_deal_meets(self):
        deal = self._deal(self.stage_qualified, is_budget_confirmed=True)
        self.assertEqual(
            deal.exit_checklist,
            [
                {"id": self.budget.id, "name": "Budget confirmed", "met": True},
                {"id": self.decision_maker.id, "name": "Decision maker identified", "met": False},
            ],
        )
        self.assertEqual((deal.exit_check_met_count, deal.exit_check_count), (1, 2))
        self.assertFalse(deal.is_exit_ready)
        deal.has_decision_maker = True
        self.assertEqual((deal.exit_check_met_count, deal.exit_check_count), (2, 2))
        self.assertTrue(deal.is_exit_ready)

    def test_first_contact_is_an_email_sent_or_a_call_done(self):
        by_email, by_call, by_note = (self._deal(self.stage_new) for _index in range(3))
        by_email.message_post(body="Hello", message_type="comment", subtype_xmlid="mail.mt_comment")
        by_note.message_post(body="Internal", message_type="comment", subtype_xmlid="mail.mt_note")
        by_call.activity_schedule("mail.mail_activity_data_call").action_feedback("Reached")
        leads = by_email | by_call | by_note
        leads.invalidate_recordset(["exit_check_met_count"])
        self.assertEqual(leads.mapped("exit_check_met_count"), [1, 1, 0])

    def test_proposal_sent_is_a_message_with_an_attachment(self):
        deal = self._deal(self.stage_proposal)
        deal.message_post(body="Our offer", message_type="comment", subtype_xmlid="mail.mt_comment")
        self.assertFalse(deal.is_exit_ready, "a message without the proposal attached")
        deal.message_post(
            body="Our offer, attached",
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
            attachments=[("proposal.pdf", b"%PDF-1.4 proposal")],
        )
        deal.invalidate_recordset(["is_exit_ready"])
        self.assertTrue(deal.is_exit_ready)

    def test_form_ticks_a_check_before_saving(self):
        deal = self._deal(self.stage_negotiation)
        with Form(deal.with_user(self.user_salesman_own)) as form:
            self.assertFalse(form.exit_checklist[0]["met"])
            form.is_scope_price_agreed = True
            self.assertTrue(form.exit_checklist[0]["met"], "ticked as the fact is ticked")

    def test_search_agrees_with_the_checklist(self):
        deals = self.Lead
        for stage in (self.stage_new, self.stage_qualified, self.stage_negotiation):
            for budget in (False, True):
                for decision in (False, True):
                    deals |= self._deal(
                        stage,
                        is_budget_confirmed=budget,
                        has_decision_maker=decision,
                        is_scope_price_agreed=budget,
                    )
        deals |= self._deal(self.stage_won)
        ready = self.Lead.search([("id", "in", deals.ids), ("is_exit_ready", "=", True)])
        missing = self.Lead.search([("id", "in", deals.ids), ("is_exit_ready", "!=", True)])
        self.assertEqual(ready, deals.filtered("is_exit_ready"))
        self.assertEqual(missing, deals - ready)
        self.assertEqual(len(ready), 1 + 2 + 1, "both facts in Qualified, scope agreed, won")

    def test_checklist_of_a_page_of_cards_is_one_query(self):
        deals = self.Lead
        for index in range(40):
            stage = (self.stage_new, self.stage_qualified, self.stage_negotiation)[index % 3]
            deals |= self._deal(stage, is_budget_confirmed=bool(index % 2))
        self.Lead._exit_checks_by_stage()  # the checks are cached once for all pages
        deals.invalidate_recordset()
        deals.mapped("stage_id")
        with self.assertQueryCount(1):
            deals.mapped("exit_check_met_count")
        self.assertEqual(sum(deals.mapped("exit_check_count")), 14 * 1 + 13 * 2 + 13 * 1)

    def test_checks_per_company(self):
        check = self.Check.create(
            {
                "name": "Credit check passed",
                "stage_id": self.stage_qualified.id,
                "domain": "[('probability', '>=', 50)]",
                "company_id": self.company_2.id,
            }
        )
        main_deal = self._deal(self.stage_qualified)
        deal_2 = self._deal(
            self.stage_qualified,
            user=self.user_company_2,
            team_id=False,
            company_id=self.company_2.id,
        )
        self.assertEqual(main_deal.exit_check_count, 2)
        self.assertEqual(deal_2.exit_check_count, 3)
        self.assertIn(check.id, [item["id"] for item in deal_2.exit_checklist])
        visible = self.Check.with_user(self.user_salesman_own).search([])
        self.assertNotIn(check, visible, "another company's check is not read")
        self.assertIn(check, self.Check.with_user(self.user_company_2).search([]))

    def test_salespeople_read_checks_and_managers_edit_them(self):
        for user in (self.user_salesman_own, self.user_salesman_all):
            self.assertEqual(self.budget.with_user(user).name, "Budget confirmed")
            with self.assertRaises(AccessError):
                self.budget.with_user(user).name = "Budget guessed"
            with self.assertRaises(AccessError):
                self.Check.with_user(user).create(
                    {"name": "Mine", "stage_id": self.stage_new.id, "domain": "[]"}
                )
        self.budget.with_user(self.user_sales_manager).name = "Budget signed off"
        self.assertEqual(self.budget.name, "Budget signed off")

    def test_invalid_condition_is_refused(self):
        with self.assertRaisesRegex(Exception, "not a valid filter on leads"):
            self.Check.create(
                {"name": "Broken", "stage_id": self.stage_new.id, "domain": "[('nope', '=', 1)]"}
            )

    # ------------------------------------------------------------
    # The gate: warn
    # ------------------------------------------------------------

    def test_warn_moves_the_deal_marks_it_and_names_the_missing_checks(self):
        deal = self._deal(self.stage_qualified, is_budget_confirmed=True)
        deal.with_user(self.user_salesman_own).write({"stage_id": self.stage_proposal.id})
        self.assertEqual(deal.stage_id, self.stage_proposal)
        self.assertTrue(deal.exit_criteria_skipped)
        note = self._gate_notes(deal)
        self.assertEqual(len(note), 1)
        self.assertIn("Decision maker identified", note.body)
        self.assertNotIn("Budget confirmed", note.body)
        self.assertEqual(note.author_id, self.user_salesman_own.partner_id)
        self.env.cr.precommit.run()  # the bus sends what the transaction queued when it commits
        toast = self.env["bus.bus"].search([("message", "ilike", "Exit criteria missing")])
        self.assertEqual(len(toast), 1, "the salesperson who moved it is told on screen")
        self.assertIn("Decision maker identified", toast.message)
        self.assertIn(str(self.user_salesman_own.partner_id.id), toast.channel)

    def test_a_complete_move_clears_the_mark(self):
        deal = self._deal(self.stage_proposal)
        deal.write({"stage_id": self.stage_negotiation.id})
        self.assertTrue(deal.exit_criteria_skipped)
        deal.write({"is_scope_price_agreed": True, "stage_id": self.stage_negotiation.id})
        deal.write({"stage_id": self.stage_won.id})
        self.assertTrue(deal.exit_criteria_skipped, "moving to won is not a gated move")
        deal.write({"stage_id": self.stage_negotiation.id})
        self.assertTrue(deal.exit_criteria_skipped, "nor is moving back")
        negotiation_two = self.env["crm.stage"].create({"name": "Legal review", "sequence": 5})
        deal.write({"stage_id": negotiation_two.id})
        self.assertFalse(deal.exit_criteria_skipped)
        self.assertEqual(len(self._gate_notes(deal)), 1)

    def test_moving_back_to_won_or_lost_is_never_gated(self):
        self.stage_negotiation.exit_gate = "block"
        self.stage_qualified.exit_gate = "block"
        deal = self._deal(self.stage_negotiation).with_user(self.user_salesman_own)
        deal.write({"stage_id": self.stage_qualified.id})
        deal.write({"stage_id": self.stage_won.id})
        self.assertEqual(deal.stage_id, self.stage_won)
        lost = self._deal(self.stage_qualified).with_user(self.user_salesman_own)
        lost.action_set_lost()
        self.assertFalse(lost.active)
        self.assertFalse(self._gate_notes(deal | lost))

    def test_jumping_stages_checks_every_stage_passed(self):
        deal = self._deal(self.stage_new)
        deal.write({"stage_id": self.stage_proposal.id})
        body = self._gate_notes(deal).body
        for check in (self.first_contact, self.budget, self.decision_maker):
            self.assertIn(check.name, body)

    # ------------------------------------------------------------
    # The gate: block, manager override, skipping stages
    # ------------------------------------------------------------

    def test_block_refuses_the_move_and_changes_nothing(self):
        self.stage_qualified.exit_gate = "block"
        deal = self._deal(self.stage_qualified, is_budget_confirmed=True)
        messages = deal.message_ids
        for user in (self.user_salesman_own, self.user_salesman_all):
            with self.assertRaisesRegex(UserError, "Decision maker identified") as caught:
                deal.with_user(user).write({"stage_id": self.stage_proposal.id})
            self.assertIn("cannot move on to Proposal", str(caught.exception))
            self.assertNotIn("Budget confirmed", str(caught.exception))
        self.env.flush_all()
        deal.invalidate_recordset()
        self.assertEqual(deal.stage_id, self.stage_qualified)
        self.assertFalse(deal.exit_criteria_skipped)
        self.assertEqual(deal.message_ids, messages)

    def test_block_lets_a_met_deal_through(self):
        self.stage_qualified.exit_gate = "block"
        deal = self._deal(self.stage_qualified, is_budget_confirmed=True, has_decision_maker=True)
        deal.with_user(self.user_salesman_own).write({"stage_id": self.stage_proposal.id})
        self.assertEqual(deal.stage_id, self.stage_proposal)
        self.assertFalse(self._gate_notes(deal))

    def test_a_sales_manager_moves_past_the_block_and_it_is_logged(self):
        self.stage_qualified.exit_gate = "block"
        deal = self._deal(self.stage_qualified)
        deal.with_user(self.user_sales_manager).write({"stage_id": self.stage_proposal.id})
        self.assertEqual(deal.stage_id, self.stage_proposal)
        note = self._gate_notes(deal)
        self.assertIn("past the stage gate by Morgan Sales Manager", note.body)
        self.assertIn("Budget confirmed", note.body)
        self.assertTrue(deal.exit_criteria_skipped)

    def test_other_company_block(self):
        """A check of another company neither warns nor blocks this company's deals."""
        self.Check.create(
            {
                "name": "Credit check passed",
                "stage_id": self.stage_proposal.id,
                "domain": "[('probability', '>=', 101)]",
                "company_id": self.company_2.id,
            }
        )
        self.stage_proposal.exit_gate = "block"
        deal_2 = self._deal(
            self.stage_proposal,
            user=self.user_company_2,
            team_id=False,
            company_id=self.company_2.id,
        )
        with self.assertRaisesRegex(UserError, "Credit check passed"):
            deal_2.with_user(self.user_company_2).write({"stage_id": self.stage_negotiation.id})
        self.proposal_sent.active = False
        main_deal = self._deal(self.stage_proposal)
        main_deal.with_user(self.user_salesman_own).write({"stage_id": self.stage_negotiation.id})
        self.assertFalse(main_deal.exit_criteria_skipped)

    def test_restricted_skipping(self):
        self.sales_team.is_stage_skip_restricted = True
        met = {"is_budget_confirmed": True, "has_decision_maker": True}
        deal = self._deal(self.stage_qualified, **met)
        with self.assertRaisesRegex(UserError, "it would skip Proposal"):
            deal.with_user(self.user_salesman_own).write({"stage_id": self.stage_negotiation.id})
        deal.with_user(self.user_salesman_own).write({"stage_id": self.stage_proposal.id})
        deal.with_user(self.user_salesman_own).write({"stage_id": self.stage_won.id})
        self.assertEqual(deal.stage_id, self.stage_won, "won may be reached from any stage")
        other = self._deal(self.stage_qualified, **met)
        other.with_user(self.user_sales_manager).write({"stage_id": self.stage_negotiation.id})
        self.assertIn("it would skip Proposal", self._gate_notes(other).body)
        self.sales_team.is_stage_skip_restricted = False
        free = self._deal(self.stage_qualified, **met)
        free.with_user(self.user_salesman_own).write({"stage_id": self.stage_negotiation.id})
        self.assertEqual(free.stage_id, self.stage_negotiation)

    # ------------------------------------------------------------
    # Ways of moving a deal
    # ------------------------------------------------------------

    def test_kanban_drag_and_status_bar_go_through_the_gate(self):
        """The kanban's drop and the status bar's click both save the record through
        web_save, as the web client calls it."""
        self.stage_qualified.exit_gate = "block"
        deal = self._deal(self.stage_qualified).with_user(self.user_salesman_own)
        with self.assertRaisesRegex(UserError, "Budget confirmed, Decision maker identified"):
            deal.web_save({"stage_id": self.stage_proposal.id}, {"stage_id": {}})
        self.stage_qualified.exit_gate = "warn"
        result = deal.web_save(
            {"stage_id": self.stage_proposal.id},
            {"stage_id": {}, "exit_criteria_skipped": {}, "exit_check_count": {}},
        )
        self.assertEqual(result[0]["stage_id"], self.stage_proposal.id)
        self.assertTrue(result[0]["exit_criteria_skipped"])
        self.assertEqual(result[0]["exit_check_count"], 1)

    def test_import_goes_through_the_gate(self):
        self.stage_qualified.exit_gate = "block"
        blocked, passing = self._deal(self.stage_qualified), self._deal(self.stage_qualified)
        Lead = self.Lead.with_user(self.user_salesman_own)
        result = Lead.load([".id", "stage_id"], [[str(blocked.id), "Proposal"]])
        self.assertFalse(result["ids"])
        self.assertIn("Decision maker identified", result["messages"][0]["message"])
        self.assertEqual(blocked.stage_id, self.stage_qualified)
        self.stage_qualified.exit_gate = "warn"
        result = Lead.load([".id", "stage_id"], [[str(passing.id), "Proposal"]])
        self.assertEqual(result["ids"], passing.ids)
        self.assertTrue(passing.exit_criteria_skipped)

    def test_mass_move_evaluates_the_checks_in_one_query(self):
        def deals(count):
            return self.Lead.concat(
                *(
                    self._deal(stage, is_budget_confirmed=bool(index % 2))
                    for index, stage in enumerate(
                        [self.stage_new, self.stage_qualified] * (count // 2)
                    )
                )
            )

        few, many = deals(6), deals(60)
        self.Lead._exit_checks_by_stage()
        self.Lead._exit_stage_order()
        for leads in (few, many):
            leads.invalidate_recordset()
            leads.mapped("stage_id")
            with self.assertQueryCount(1):
                passages = leads._exit_gate_passages(self.stage_negotiation.id)
            self.assertEqual(len(passages), len(leads))
        many.with_user(self.user_salesman_all).write({"stage_id": self.stage_negotiation.id})
        self.assertTrue(all(many.mapped("exit_criteria_skipped")))
        self.assertEqual(len(self._gate_notes(many)), 60)

    def test_automation_rule_filters_on_ready_deals(self):
        automation = self.env["base.automation"].create(
            {
                "name": "Tag ready deals",
                "model_id": self.env.ref("crm.model_crm_lead").id,
                "trigger": "on_create_or_write",
                "filter_domain": "[('is_exit_ready', '=', True)]",
                "trigger_field_ids": [
                    (
                        6,
                        0,
                        self.env.ref(
                            "crm_pipeline_optimizer.field_crm_lead__has_decision_maker"
                        ).ids,
                    )
                ],
            }
        )
        tag = self.env["crm.tag"].create({"name": "Ready"})
        self.env["ir.actions.server"].create(
            {
                "name": "Tag",
                "model_id": self.env.ref("crm.model_crm_lead").id,
                "base_automation_id": automation.id,
                "state": "object_write",
                "update_path": "tag_ids",
                "update_m2m_operation": "add",
                "resource_ref": f"crm.tag,{tag.id}",
            }
        )
        ready = self._deal(self.stage_qualified, is_budget_confirmed=True)
        not_ready = self._deal(self.stage_qualified)
        (ready | not_ready).write({"has_decision_maker": True})
        self.assertIn(tag, ready.tag_ids)
        self.assertNotIn(tag, not_ready.tag_ids)

    # ------------------------------------------------------------
    # The dashboard
    # ------------------------------------------------------------

    def test_dashboard_counts_open_deals_missing_criteria_per_stage(self):
        self._deal(self.stage_qualified, is_budget_confirmed=True, has_decision_maker=True)
        self._deal(self.stage_qualified, is_budget_confirmed=True)
        self._deal(self.stage_qualified, user=self.user_salesman_all)
        self._deal(self.stage_negotiation, is_scope_price_agreed=True)
        lost = self._deal(self.stage_qualified)
        lost.action_set_lost()
        for user in (self.user_salesman_own, self.user_sales_manager):
            with self.subTest(user=user.name):
                Dashboard = self.env["crm.pipeline.dashboard"].with_user(user)
                rows = {row["stage_id"]: row for row in Dashboard.get_exit_criteria_data()}
                Lead = self.Lead.with_user(user)
                for row in rows.values():
                    found = Lead.search(row["domain"])
                    self.assertEqual(row["missing_count"], len(found))
                    self.assertFalse(any(found.mapped("is_exit_ready")))
                qualified = Lead.search(rows[self.stage_qualified.id]["domain"])
                self.assertNotIn(lost, qualified)
                open_qualified = Lead.search(
                    [("stage_id", "=", self.stage_qualified.id), ("type", "=", "opportunity")]
                )
                self.assertEqual(
                    qualified, open_qualified.filtered(lambda deal: not deal.is_exit_ready)
                )
        own = self.env["crm.pipeline.dashboard"].with_user(self.user_salesman_own)
        rows = {row["stage_id"]: row for row in own.get_exit_criteria_data()}
        self.assertEqual(rows[self.stage_qualified.id]["missing_count"], 1)
        self.assertEqual(rows[self.stage_negotiation.id]["missing_count"], 0)
