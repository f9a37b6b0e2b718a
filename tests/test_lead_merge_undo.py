from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import freeze_time, tagged
from odoo.tools import mute_logger

from .common import DuplicatesCommon


class MergeUndoCommon(DuplicatesCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["base.automation"].search([]).active = False
        cls.watcher = cls.env["res.partner"].create({"name": "Silent Watcher"})

    def _cluster(self, count, **values):
        return self.env["crm.lead"].concat(
            *(self._john(name=f"Copy {index}", **values) for index in range(count))
        )

    def _merge_from_list(self, leads, env=None):
        env = env or self.env
        wizard = (
            env["crm.merge.opportunity"]
            .with_context(active_model="crm.lead", active_ids=leads.ids)
            .create({})
        )
        wizard.action_merge()
        return wizard.master_id


@tagged("merge", "post_install", "-at_install")
class TestOneMerge(MergeUndoCommon):
    """Every merge a user can start is the module's."""

    def test_action_menu_offers_one_merge(self):
        bindings = self.env["ir.actions.act_window"].search(
            [
                ("binding_model_id.model", "=", "crm.lead"),
                ("res_model", "in", ["crm.merge.opportunity", "crm.lead.merge.cluster"]),
            ]
        )
        self.assertEqual(bindings, self.env.ref("crm.action_merge_opportunities"))

    def test_list_merge_takes_seven_records_and_keeps_a_silent_follower(self):
        """crm's merge took at most five records and dropped a follower who never posted
        on the lead; the list's Merge now keeps every follower."""
        leads = self._cluster(7)
        leads[3].message_subscribe(partner_ids=self.watcher.ids)
        master = self._merge_from_list(leads.with_user(self.user_salesman_all))
        self.assertEqual(leads.exists(), master)
        self.assertIn(self.watcher, master.message_partner_ids)
        self.assertTrue(master.undoable_merge_log_id)

    def test_convert_with_merge_keeps_a_silent_follower(self):
        lead = self._john(name="New inquiry", type="lead")
        existing = self._john(name="Existing deal")
        existing.message_subscribe(partner_ids=self.watcher.ids)
        wizard = (
            self.env["crm.lead2opportunity.partner"]
            .with_context(active_model="crm.lead", active_id=lead.id, active_ids=lead.ids)
            .create({})
        )
        self.assertEqual(wizard.name, "merge")
        self.assertEqual(wizard.duplicated_lead_ids, lead | existing)
        wizard.action_apply()
        kept = (lead | existing).exists()
        self.assertEqual(len(kept), 1)
        self.assertIn(self.watcher, kept.message_partner_ids)
        self.assertTrue(kept.undoable_merge_log_id)

    def test_mass_conversion_merges_three_records_of_one_customer(self):
        """crm's own deduplication loop read the records it had merged again (a missing
        record error) from three records of one customer on."""
        leads = self._cluster(3, type="lead")
        leads[2].message_subscribe(partner_ids=self.watcher.ids)
        wizard = (
            self.env["crm.lead2opportunity.partner.mass"]
            .with_context(active_model="crm.lead", active_ids=leads.ids)
            .create({"name": "convert", "deduplicate": True})
        )
        wizard.action_mass_convert()
        kept = leads.exists()
        self.assertEqual(len(kept), 1)
        self.assertEqual(kept.type, "opportunity")
        self.assertIn(self.watcher, kept.message_partner_ids)

    def test_crm_merge_method_keeps_its_contract_for_its_callers(self):
        """Called without the wizards' context, crm's merge_opportunity is crm's (its
        tests pin it): at most five records for anyone but the superuser."""
        leads = self._cluster(6).with_user(self.user_salesman_all)
        with self.assertRaisesRegex(UserError, "groups of 5"):
            leads.merge_opportunity()


@tagged("merge", "post_install", "-at_install")
class TestUndoMerge(MergeUndoCommon):
    def test_undo_brings_every_record_back_as_it_was(self):
        master_to_be = self._john(name="Kept deal", phone=False, stage_id=self.stage_proposal.id)
        other = self._john(
            name="Other deal",
            phone="+1 202 555 0199",
            stage_id=self.stage_qualified.id,
            user_id=self.user_salesman_own.id,
            tag_ids=[(0, 0, {"name": "From the other"})],
        )
        other.message_post(body="Call notes", subject="Discovery call")
        other.message_subscribe(partner_ids=self.watcher.ids)
        activity = other.activity_schedule("mail.mail_activity_data_todo", summary="Send offer")
        other_id, other_stage, other_user = other.id, other.stage_id, other.user_id
        wizard = (
            self.env["crm.lead.merge.cluster"]
            .with_context(active_model="crm.lead", active_ids=(master_to_be | other).ids)
            .create({})
        )
        wizard.master_id = master_to_be
        master = wizard.lead_ids._merge_into(master_to_be)
        self.assertFalse(other.exists())
        self.assertEqual(master.phone, "+1 202 555 0199")  # filled from the other
        # What happens on the kept record after the merge stays there.
        master.message_post(body="After the merge")
        later = master.activity_schedule("mail.mail_activity_data_todo", summary="Later")

        master.action_undo_merge()
        self.env.invalidate_all()
        restored = self.env["crm.lead"].browse(other_id)
        self.assertTrue(restored.exists())
        self.assertEqual(restored.stage_id, other_stage)
        self.assertEqual(restored.user_id, other_user)
        self.assertEqual(restored.activity_ids, activity)
        self.assertIn(self.watcher, restored.message_partner_ids)
        self.assertNotIn(self.watcher, master.message_partner_ids)
        self.assertIn("Discovery call", restored.message_ids.mapped("subject"))
        self.assertEqual(restored.tag_ids.mapped("name"), ["From the other"])
        self.assertFalse(master.tag_ids)
        self.assertFalse(master.phone)
        self.assertIn(later, master.activity_ids)
        self.assertIn("After the merge", "".join(master.message_ids.mapped("body")))
        self.assertFalse(master.undoable_merge_log_id)
        log = self.env["crm.lead.merge.log"].search([("master_id", "=", master.id)])
        self.assertEqual(log.state, "undone")
        with self.assertRaisesRegex(UserError, "already undone"):
            log._undo()

    def test_undo_keeps_a_field_changed_since_the_merge(self):
        master, other = self._john(name="Kept", phone=False), self._john(name="Other")
        master = (master | other)._merge_into(master)
        master.phone = "+1 202 555 0111"
        master.action_undo_merge()
        self.assertEqual(master.phone, "+1 202 555 0111")

    def test_undo_period_is_a_setting(self):
        self.company_main.merge_undo_days = 10
        leads = self._cluster(2)
        master = leads._merge_into(leads[0])
        log = master.undoable_merge_log_id
        self.assertTrue(log)
        with freeze_time(fields.Datetime.now() + timedelta(days=11)):
            master.invalidate_recordset(["undoable_merge_log_id"])
            self.assertFalse(master.undoable_merge_log_id)
            with self.assertRaisesRegex(UserError, "merges can be undone for 10 days"):
                log._undo()

    def test_merged_records_count_nowhere_until_undone(self):
        Figure = self.env["crm.pipeline.figure"]
        before = Figure._totals()
        leads = self._cluster(3)
        leads[1].action_set_lost()
        leads[0].message_post(body="Reply")
        with_leads = Figure._totals()
        master = self._merge_from_list(leads.filtered("active"))
        self.assertEqual(master.search_count([("name", "like", "Copy %")]), 1)
        Figure._rebuild_figures()
        after_merge = Figure._totals()
        self.assertNotEqual(after_merge, with_leads)
        master.action_undo_merge()
        self.assertEqual(Figure._totals(), with_leads)
        Figure._rebuild_figures()
        self.assertEqual(Figure._totals(), with_leads)
        self.assertNotEqual(before, with_leads)

    @mute_logger("odoo.sql_db")
    def test_undo_refused_when_a_record_it_points_to_is_gone(self):
        customer = self.env["res.partner"].create({"name": "Only here"})
        leads = self._cluster(2)
        leads[1].partner_id = customer
        master = leads._merge_into(leads[0])
        master.partner_id = False
        customer.unlink()
        with self.assertRaisesRegex(UserError, "can no longer be undone"):
            master.action_undo_merge()
        self.assertEqual(leads.exists(), master)

    def test_undo_is_for_whoever_could_merge_them(self):
        theirs = self._cluster(2, user_id=self.user_salesman_all.id)
        master = theirs._merge_into(theirs[0])
        own_salesperson = master.with_user(self.user_salesman_own)
        with self.assertRaises(AccessError):
            own_salesperson.action_undo_merge()
        master.with_user(self.user_salesman_all).action_undo_merge()
        self.assertEqual(len(theirs.exists()), 2)

    def test_own_documents_salesperson_undoes_their_own_merge(self):
        own = self._cluster(2, user_id=self.user_salesman_own.id)
        master = self._merge_from_list(own.with_user(self.user_salesman_own))
        master.with_user(self.user_salesman_own).action_undo_merge()
        self.assertEqual(len(own.exists()), 2)

    def test_merge_journal_is_for_sales_administrators(self):
        leads = self._cluster(2)
        leads._merge_into(leads[0])
        Log = self.env["crm.lead.merge.log"]
        self.assertTrue(Log.with_user(self.user_sales_manager).search([]))
        with self.assertRaises(AccessError):
            Log.with_user(self.user_salesman_all).search([])
