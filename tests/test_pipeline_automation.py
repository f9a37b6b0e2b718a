from datetime import timedelta

from odoo.tests import freeze_time, tagged

from .common import T0, StaleDealsCommon

CUSTOMER_TEMPLATES = (
    "mail_template_initial_outreach",
    "mail_template_meeting_confirmation",
    "mail_template_proposal_delivery",
    "mail_template_meeting_summary",
    "mail_template_won_lost_followup",
)


@tagged("automation", "post_install", "-at_install")
class TestPipelineEmailTemplates(StaleDealsCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.customer = cls.env["res.partner"].create(
            {"name": "Ioana Popescu", "email": "ioana@client.example.ro"}
        )
        cls.deal = cls.env["crm.lead"].create(
            {
                "name": "Warehouse scanners",
                "type": "opportunity",
                "partner_id": cls.customer.id,
                "user_id": cls.user_salesman_own.id,
                "team_id": cls.sales_team.id,
                "expected_revenue": 12500,
            }
        )

    def _render(self, xmlid, lead):
        template = self.env.ref(f"crm_pipeline_optimizer.{xmlid}")
        body = template._render_field("body_html", lead.ids)[lead.id]
        subject = template._render_field("subject", lead.ids)[lead.id]
        return str(body), subject

    def test_customer_templates_render_their_placeholders(self):
        for xmlid in CUSTOMER_TEMPLATES:
            with self.subTest(template=xmlid):
                body, subject = self._render(xmlid, self.deal)
                self.assertIn("Dear Ioana Popescu", body)
                self.assertIn("Sam Own Documents", body)
                self.assertIn(self.env.company.name, body)
                self.assertIn("Warehouse scanners", body + subject)
                self.assertNotIn("{{", body + subject)
                self.assertNotIn("Ms. Nguyen", body, "the placeholder example leaked")
        body, subject = self._render("mail_template_proposal_delivery", self.deal)
        self.assertEqual(subject, "Our proposal for Warehouse scanners")
        self.assertIn("12,500.00", body)

    def test_contact_name_without_partner(self):
        lead = self.env["crm.lead"].create(
            {"name": "Cold lead", "contact_name": "Trần Văn An", "email_from": "an@example.vn"}
        )
        body, _subject = self._render("mail_template_initial_outreach", lead)
        self.assertIn("Dear Trần Văn An", body)
        template = self.env.ref("crm_pipeline_optimizer.mail_template_initial_outreach")
        self.assertEqual(template._render_field("email_to", lead.ids)[lead.id], "an@example.vn")

    def test_won_and_lost_variants(self):
        self.deal.stage_id = self.stage_won
        body, subject = self._render("mail_template_won_lost_followup", self.deal)
        self.assertTrue(subject.startswith("Welcome aboard"))
        self.assertIn("Thank you for choosing", body)
        lost = self.deal.copy({"name": "Lost scanners", "stage_id": self.stage_proposal.id})
        lost.action_set_lost()
        body, subject = self._render("mail_template_won_lost_followup", lost)
        self.assertTrue(subject.startswith("Thank you for considering us"))
        self.assertIn("what made the difference", body)


@tagged("automation", "post_install", "-at_install")
class TestPipelineAutomationRules(StaleDealsCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.customer = cls.env["res.partner"].create(
            {"name": "Nguyễn Thị Mai", "email": "mai@client.example.vn"}
        )

    def _rule(self, xmlid):
        rule = self.env.ref(f"crm_pipeline_optimizer.{xmlid}")
        rule.active = True
        return rule

    def _deal(self, **values):
        return self.env["crm.lead"].create(
            {
                "name": "Fleet tracking",
                "type": "opportunity",
                "partner_id": self.customer.id,
                "user_id": self.user_salesman_own.id,
                "team_id": self.sales_team.id,
                "stage_id": self.stage_qualified.id,
                **values,
            }
        )

    def _messages(self, lead, subject_part):
        return lead.message_ids.filtered(lambda m: subject_part in (m.subject or ""))

    def test_rules_are_seeded_for_consultants(self):
        rules = (
            self.env["base.automation"]
            .with_context(active_test=False)
            .search([("model_name", "=", "crm.lead")])
        )
        names = set(rules.mapped("name"))
        for name in (
            "Assign new leads without a sales team to Sales",
            "Send the proposal email when an opportunity enters Proposal",
            "Tell the salesperson when a deal goes quiet",
            "Thank the customer when an opportunity is won",
            "Ask for feedback when an opportunity is lost",
        ):
            self.assertIn(name, names)
        # Only the scheduled note is on at install: nothing emails customers or reassigns
        # leads before a consultant decides so.
        seeded = rules.filtered(lambda r: r.get_external_id()[r.id].startswith("crm_pipeline"))
        self.assertEqual(
            seeded & self.automations_active_at_install,
            self.env.ref("crm_pipeline_optimizer.automation_stale_notification"),
        )
        # No code to edit: each rule's action is a no-code action.
        for rule in rules.filtered(lambda r: r.get_external_id()[r.id].startswith("crm_pipeline")):
            self.assertTrue(rule.action_server_ids)
            self.assertNotIn("code", rule.action_server_ids.mapped("state"))

    def test_assignment_of_new_leads(self):
        self._rule("automation_assign_without_team")
        sales = self.env.ref("sales_team.team_sales_department")
        # As from a web form or a mail alias: no salesperson, no team.
        lead = self.env["crm.lead"].create(
            {"name": "Website enquiry", "type": "lead", "user_id": False, "team_id": False}
        )
        self.assertEqual(lead.team_id, sales)
        kept = self.env["crm.lead"].create({"name": "Direct", "team_id": self.sales_team.id})
        self.assertEqual(kept.team_id, self.sales_team)

    def test_assignment_by_country(self):
        self._rule("automation_assign_by_country")
        sales = self.env.ref("sales_team.team_sales_department")
        romanian = self.env["crm.lead"].create(
            {
                "name": "Cluj enquiry",
                "country_id": self.env.ref("base.ro").id,
                "user_id": self.user_salesman_own.id,
            }
        )
        romanian.team_id = False
        self.assertEqual(romanian.team_id, sales)
        other = self.env["crm.lead"].create(
            {
                "name": "Hanoi enquiry",
                "country_id": self.env.ref("base.vn").id,
                "user_id": self.user_salesman_own.id,
            }
        )
        other.team_id = False
        self.assertFalse(other.team_id)

    def test_proposal_email_on_entering_proposal(self):
        self._rule("automation_proposal_email")
        deal = self._deal()
        self.assertFalse(self._messages(deal, "Our proposal for"))
        deal.stage_id = self.stage_proposal
        message = self._messages(deal, "Our proposal for")
        self.assertEqual(len(message), 1)
        self.assertEqual(message.subject, "Our proposal for Fleet tracking")
        self.assertIn(self.customer, message.partner_ids)
        self.assertIn("Dear Nguyễn Thị Mai", message.body)
        deal.stage_id = self.stage_negotiation
        self.assertEqual(len(self._messages(deal, "Our proposal for")), 1)

    def test_won_and_lost_follow_up(self):
        self._rule("automation_won_followup")
        self._rule("automation_lost_followup")
        won, lost = self._deal(), self._deal(name="Fleet tracking 2")
        won.action_set_won()
        lost.action_set_lost()
        self.assertEqual(len(self._messages(won, "Welcome aboard")), 1)
        self.assertEqual(len(self._messages(lost, "Thank you for considering us")), 1)
        self.assertFalse(self._messages(won, "Thank you for considering us"))

    def test_quiet_deal_notification(self):
        rule = self._rule("automation_stale_notification")
        rule.last_run = T0
        deal = self._deal()
        self._set_dates(deal, entered=T0, updated=T0)
        with freeze_time(T0 + timedelta(days=4)):
            self.env["crm.lead"]._cron_stale_followups()
            self.assertTrue(deal.date_stale)
        with freeze_time(T0 + timedelta(days=4, minutes=30)):
            rule._check()
        self.assertFalse(self._messages(deal, "Gone quiet"), "an hour after it is found stale")
        with freeze_time(T0 + timedelta(days=4, hours=2)):
            rule._check()
        alert = self._messages(deal, "Gone quiet")
        self.assertEqual(len(alert), 1)
        self.assertEqual(alert.partner_ids, self.user_salesman_own.partner_id)
        self.assertTrue(alert.subtype_id.internal, "an internal note")
        with freeze_time(T0 + timedelta(days=5)):
            rule._check()
        self.assertEqual(len(self._messages(deal, "Gone quiet")), 1, "told once")
