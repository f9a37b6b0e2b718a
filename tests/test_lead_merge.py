from unittest.mock import patch

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from .common import DuplicatesCommon


@tagged("merge", "post_install", "-at_install")
class TestMergeLeads(DuplicatesCommon):
    def _history(self, lead, index):
        lead.message_post(body=f"Note {index}", subject=f"Call {index}" if index % 2 else False)
        self.env["ir.attachment"].create(
            {
                "name": f"offer-{index}.pdf",
                "res_model": "crm.lead",
                "res_id": lead.id,
                "raw": b"%PDF",
            }
        )
        lead.activity_schedule("mail.mail_activity_data_todo", summary=f"Todo {index}")
        partner = self.env["res.partner"].create({"name": f"Watcher {index}"})
        lead.message_subscribe(partner_ids=partner.ids)
        return partner

    def _summary(self, master):
        summary = master.message_ids.filtered(lambda message: "merged into" in (message.body or ""))
        self.assertEqual(len(summary), 1)
        return summary.body

    def _counts(self, leads):
        domain = [("model", "=", "crm.lead"), ("res_id", "in", leads.ids)]
        return {
            "messages": self.env["mail.message"].search_count(domain),
            "attachments": self.env["ir.attachment"].search_count(
                [("res_model", "=", "crm.lead"), ("res_id", "in", leads.ids)]
            ),
            "activities": self.env["mail.activity"].search_count(
                [("res_model", "=", "crm.lead"), ("res_id", "in", leads.ids)]
            ),
            "followers": len(set(leads.message_partner_ids.ids)),
        }

    def test_merge_loses_nothing(self):
        leads = self._john() | self._john(name="Second") | self._john(name="Third")
        for index, lead in enumerate(leads):
            self._history(lead, index)
        event = self.env["calendar.event"].create(
            {
                "name": "Demo",
                "opportunity_id": leads[2].id,
                "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
                "res_id": leads[2].id,
                "start": fields.Datetime.now(),
                "stop": fields.Datetime.now(),
            }
        )
        before = self._counts(leads)
        master = leads._merge_into(leads[0])
        after = self._counts(master)
        self.assertEqual(after["attachments"], before["attachments"])
        self.assertEqual(after["activities"], before["activities"])
        self.assertEqual(after["followers"], before["followers"])
        # Every message moved, plus the merge summary.
        self.assertEqual(after["messages"], before["messages"] + 1)
        self.assertEqual(event.opportunity_id, master)
        self.assertEqual(event.res_id, master.id)
        self.assertEqual(len(leads.exists()), 1)
        subjects = master.message_ids.mapped("subject")
        self.assertIn("From Second: Call 1", subjects)
        self.assertIn("From Third", subjects)
        attachments = self.env["ir.attachment"].search(
            [("res_model", "=", "crm.lead"), ("res_id", "=", master.id)]
        )
        self.assertIn("offer-2.pdf (from Third)", attachments.mapped("name"))
        self.assertIn("offer-0.pdf", attachments.mapped("name"))

    def test_a_follower_of_several_records_follows_once_with_all_subtypes(self):
        first, second = self._john(), self._john(name="Second")
        partner = self.env["res.partner"].create({"name": "Watcher"})
        note = self.env.ref("mail.mt_note")
        stage = self.env.ref("crm.mt_lead_stage")
        first.message_subscribe(partner_ids=partner.ids, subtype_ids=note.ids)
        second.message_subscribe(partner_ids=partner.ids, subtype_ids=stage.ids)
        master = (first | second)._merge_into(first)
        follower = master.message_follower_ids.filtered(lambda f: f.partner_id == partner)
        self.assertEqual(len(follower), 1)
        self.assertEqual(follower.subtype_ids, note | stage)

    def test_merge_fills_empty_fields_and_says_from_where(self):
        tag = self.env["crm.tag"].create({"name": "Fair 2026"})
        master = self._lead(
            name="Master", contact_name="John Smith", email_from="john@x.example.com"
        )
        other = self._lead(
            name="Other",
            email_from="john@x.example.com",
            phone="+1 202 555 0188",
            function="CFO",
            tag_ids=[(6, 0, tag.ids)],
            is_budget_confirmed=True,
            description="<p>Wants a demo</p>",
        )
        (master | other)._merge_into(master)
        self.assertEqual(master.phone, "+1 202 555 0188")
        self.assertEqual(master.function, "CFO")
        self.assertEqual(master.tag_ids, tag)
        self.assertTrue(master.is_budget_confirmed)
        self.assertIn("Wants a demo", master.description)
        summary = self._summary(master)
        self.assertIn("Records merged into this one (1)", summary)
        self.assertIn("Job Position: CFO (from Other)", summary)
        self.assertIn("Tags: Fair 2026 (from Other)", summary)

    def test_merge_50_records(self):
        leads = self.env["crm.lead"].concat(*(self._john(name=f"Copy {n}") for n in range(50)))
        for index, lead in enumerate(leads):
            lead.message_post(body=f"Note {index}")
        before = self._counts(leads)
        master = leads._merge_into(leads._merge_default_master())
        self.assertEqual(len(leads.exists()), 1)
        self.assertEqual(self._counts(master)["messages"], before["messages"] + 1)
        self.assertIn("Records merged into this one (49)", self._summary(master))

    def test_wizard_merges_into_the_chosen_record_salesperson_and_team(self):
        other_team = self.env["crm.team"].create({"name": "Key accounts"})
        leads = self._john(stage_id=self.stage_new.id) | self._john(
            stage_id=self.stage_proposal.id, name="Advanced"
        )
        wizard_form = Form(
            self.env["crm.lead.merge.cluster"].with_context(
                active_model="crm.lead", active_ids=leads.ids
            )
        )
        self.assertEqual(
            wizard_form.master_id, leads[1], "the most advanced deal is kept by default"
        )
        wizard_form.master_id = leads[0]
        wizard_form.user_id = self.user_salesman_own
        wizard_form.team_id = other_team
        wizard_form.save().action_merge()
        self.assertEqual(leads.exists(), leads[0])
        self.assertEqual(leads[0].user_id, self.user_salesman_own)
        self.assertEqual(leads[0].team_id, other_team)

    def test_bad_input_is_refused_clearly(self):
        first, second, other = self._john(), self._john(name="Second"), self._john(name="Other")
        wizard = self.env["crm.lead.merge.cluster"].create(
            {"lead_ids": [(6, 0, (first | second).ids)], "master_id": other.id}
        )
        with self.assertRaisesRegex(UserError, "must be one of the records merged"):
            wizard.action_merge()
        with self.assertRaisesRegex(UserError, "at least two"):
            first._merge_into(first)
        with self.assertRaisesRegex(UserError, "Open the similar leads"):
            second.action_mark_not_duplicate()
        scan = self.env["crm.lead.duplicate.scan"].create({"lead_domain": "[('name', '=',"})
        with self.assertRaisesRegex(UserError, "not valid"):
            scan.action_scan()
        self.assertEqual(len((first | second | other).exists()), 3)

    def test_won_deal_is_kept_and_two_won_deals_are_refused(self):
        open_deal = self._john(stage_id=self.stage_proposal.id)
        won = self._john(stage_id=self.stage_won.id, name="Won")
        self.assertEqual((open_deal | won)._merge_default_master(), won)
        with self.assertRaisesRegex(UserError, "won deal is the record kept"):
            (open_deal | won)._merge_into(open_deal)
        won_too = self._john(stage_id=self.stage_won.id, name="Won too")
        with self.assertRaisesRegex(UserError, "Two won deals"):
            (won | won_too)._merge_into(won)

    def test_lost_records_merge_into_an_open_one_not_the_reverse(self):
        open_deal = self._john()
        lost = self._john(name="Lost")
        lost.action_set_lost(
            lost_reason_id=self.env["crm.lost.reason"].create({"name": "Price"}).id
        )
        with self.assertRaisesRegex(UserError, "not merged into a lost one"):
            (open_deal | lost)._merge_into(lost)
        # crm's merge would take the lost reason from a kept record without probability.
        open_deal.write({"probability": 0, "automated_probability": 0})
        master = (open_deal | lost)._merge_into(open_deal)
        self.assertTrue(master.active)
        self.assertFalse(master.lost_reason_id)

    def test_leads_of_different_companies_are_never_merged(self):
        mine = self._john()
        theirs = self._john(
            company_id=self.company_2.id, team_id=False, user_id=self.user_company_2.id
        )
        with self.assertRaisesRegex(UserError, "different companies"):
            (mine | theirs)._merge_into(mine)
        self.assertTrue(theirs.exists())

    def test_own_documents_salesperson_cannot_merge_a_colleagues_lead(self):
        mine = self._john(user_id=self.user_salesman_own.id)
        colleague = self._john(user_id=self.user_salesman_all.id)
        mine.message_post(body="mine")
        with self.assertRaises(AccessError):
            (mine | colleague).with_user(self.user_salesman_own)._merge_into(
                mine.with_user(self.user_salesman_own)
            )
        self.assertTrue(colleague.exists())

    def test_all_documents_salesperson_merges(self):
        leads = self._john() | self._john(user_id=self.user_sales_manager.id)
        merged = leads.with_user(self.user_salesman_all)._merge_into(
            leads[0].with_user(self.user_salesman_all)
        )
        self.assertEqual(leads.exists(), merged)

    @mute_logger("odoo.sql_db")
    def test_failed_merge_changes_nothing(self):
        leads = self._john() | self._john(name="Second")
        self._history(leads[1], 1)
        before = self._counts(leads[1])
        Lead = type(self.env["crm.lead"])
        with (
            patch.object(Lead, "_merge_post_summary", side_effect=UserError("boom")),
            self.assertRaisesRegex(UserError, "boom"),
        ):
            leads._merge_into(leads[0])
        self.assertEqual(len(leads.exists()), 2)
        self.env.invalidate_all()
        self.assertEqual(self._counts(leads[1]), before)
        # And it runs again cleanly.
        leads._merge_into(leads[0])
        self.assertEqual(self._counts(leads[0])["attachments"], 1)

    def test_stars_given_by_hand_win(self):
        master = self._john()
        other = self._john(name="Hot", priority="3")
        self.assertTrue(other.is_priority_manual)
        (master | other)._merge_into(master)
        self.assertEqual(master.priority, "3")
        self.assertTrue(master.is_priority_manual)
