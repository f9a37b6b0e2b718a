from unittest.mock import patch

from odoo import fields
from odoo.addons.crm_pipeline_optimizer.models import match_keys
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged, users
from odoo.tools import mute_logger

from .common import PipelineOptimizerCommon


class DuplicatesCommon(PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.us = cls.env.ref("base.us")
        cls.ro = cls.env.ref("base.ro")

    def _lead(self, **values):
        values.setdefault("name", "Deal")
        values.setdefault("type", "opportunity")
        values.setdefault("team_id", self.sales_team.id)
        values.setdefault("user_id", self.user_salesman_all.id)
        return self.env["crm.lead"].create(values)

    def _john(self, **values):
        """One customer contact, John Smith of Acme 12 (US), typed cleanly."""
        return self._lead(
            **{
                "contact_name": "John Smith",
                "partner_name": "Acme 12 Inc.",
                "email_from": "john.smith12@acme12.example.com",
                "phone": "+1 202 555 0123",
                "country_id": self.us.id,
                **values,
            }
        )


@tagged("post_install", "-at_install")
class TestMatchKeys(DuplicatesCommon):
    def test_email_key_ignores_case_spaces_and_plus_tags(self):
        for typed in (
            "JOHN.SMITH12@ACME12.EXAMPLE.COM",
            "  John.smith12@acme12.example.com ",
            "john.smith12+crm@acme12.example.com",
            '"John Smith" <john.smith12@acme12.example.com>',
        ):
            self.assertEqual(match_keys.email_key(typed), "john.smith12@acme12.example.com", typed)
        self.assertFalse(match_keys.email_key("not an address"))

    def test_phone_key_is_one_form_whatever_the_typing(self):
        for typed in ("+1 (202) 555-0123", "202.555.0123", "001 202 555 0123", "+12025550123"):
            self.assertEqual(match_keys.phone_key(typed, ("US",)), "+12025550123", typed)
        for typed in ("0721 234 567", "0040 721 234 567", "+40721234567"):
            self.assertEqual(match_keys.phone_key(typed, ("RO",)), "+40721234567", typed)

    def test_phone_country_comes_from_lead_then_company(self):
        self.env.company.country_id = self.ro
        romanian = self._lead(phone="0721 234 567", country_id=self.ro.id)
        no_country = self._lead(phone="0721 234 567", country_id=False)
        american = self._lead(phone="202.555.0123", country_id=self.us.id)
        self.assertEqual(romanian.phone_match_key, "+40721234567")
        self.assertEqual(no_country.phone_match_key, "+40721234567")
        self.assertEqual(american.phone_match_key, "+12025550123")

    def test_company_key_drops_legal_forms_in_five_languages(self):
        cases = {
            "acme 12": ["Acme 12 Inc.", "ACME 12, Inc", "acme 12 LLC", "Acme 12 Corp.", "Acme 12"],
            "dunarea 7": ["Dunărea 7 SRL", "DUNĂREA 7 S.R.L.", "Dunarea 7 SA"],
            "minh phat 3": [
                "Công ty TNHH Minh Phát 3",
                "Minh Phát 3 Co., Ltd",
                "Công ty Cổ phần Minh Phát 3",
            ],
        }
        for key, typings in cases.items():
            for typed in typings:
                self.assertEqual(match_keys.company_key(typed), key, typed)
        arabic = {
            match_keys.company_key(name) for name in ("شركة النور 5", "النور 5", "مؤسسة النور 5")
        }
        persian = {
            match_keys.company_key(name) for name in ("شرکت پارس 9", "پارس 9 سهامی خاص", "پارس 9")
        }
        self.assertEqual(len(arabic), 1, arabic)
        self.assertEqual(len(persian), 1, persian)

    def test_domain_key_skips_public_mail_providers(self):
        self.assertEqual(match_keys.domain_key("Ann@Acme12.com", False), "acme12.com")
        self.assertEqual(
            match_keys.domain_key("ann@gmail.com", "https://www.acme12.com/x"), "acme12.com"
        )
        self.assertFalse(match_keys.domain_key("ann@gmail.com", False))

    def test_keys_follow_edits(self):
        lead = self._john()
        lead.write({"email_from": "J.Smith+x@Other.com", "partner_name": "Other SRL"})
        self.assertEqual(lead.email_match_key, "j.smith@other.com")
        self.assertEqual(lead.company_match_key, "other")
        self.assertEqual(lead.domain_match_key, "other.com")

    def test_bulk_fill_agrees_with_the_orm_and_keeps_write_date(self):
        leads = self._john() | self._lead(
            phone="0721 234 567", country_id=self.ro.id, partner_name="Olt Construct SA"
        )
        expected = leads.read(list(match_keys.MATCH_KEY_FIELDS))
        self._backdate(leads, idle_days=5)
        self.env.cr.execute(
            "UPDATE crm_lead SET email_match_key = NULL, phone_match_key = 'x', "
            "company_match_key = NULL WHERE id IN %s",
            (tuple(leads.ids),),
        )
        leads.invalidate_recordset()
        write_dates = leads.mapped("write_date")
        self.assertGreaterEqual(self.env["crm.lead"]._fill_match_keys(batch_size=1), 2)
        self.assertEqual(leads.read(list(match_keys.MATCH_KEY_FIELDS)), expected)
        self.assertEqual(leads.mapped("write_date"), write_dates)


@tagged("post_install", "-at_install")
class TestSimilarLeads(DuplicatesCommon):
    def test_similar_leads_say_why(self):
        john = self._john()
        by_email = self._lead(email_from=" JOHN.SMITH12+web@acme12.example.com", contact_name="J.")
        by_phone = self._lead(phone="202.555.0123", country_id=self.us.id)
        by_company = self._lead(partner_name="ACME 12, Inc")
        stranger = self._lead(email_from="ann@other.example.com", partner_name="Other")
        self.assertEqual(john.similar_lead_ids, by_email | by_phone | by_company)
        self.assertEqual(john.similar_lead_count, 3)
        self.assertNotIn(stranger, john.similar_lead_ids)
        reasons = (john | by_email | by_phone | by_company).with_context(similar_to_lead_id=john.id)
        self.assertEqual(
            reasons.mapped("similarity_reason"),
            ["This record", "Same email, Same internet domain", "Same phone", "Same company name"],
        )

    def test_similar_company_name_written_almost_the_same(self):
        if not self.env.registry.has_trigram:
            self.fail("pg_trgm is not available: fuzzy company names cannot be tested")
        lead = self._lead(partner_name="Quxbridge Logistic 44", contact_name="Ann Lee")
        typo = self._lead(partner_name="Quxbridge Logistics 44", contact_name="Ann Lee")
        other_contact = self._lead(partner_name="Quxbridge Logistics 44", contact_name="Bo Chen")
        other_number = self._lead(partner_name="Quxbridge Logistics 45", contact_name="Ann Lee")
        self.assertEqual(lead.similar_lead_ids, typo)
        self.assertEqual(
            typo.with_context(similar_to_lead_id=lead.id).similarity_reason,
            "Similar company name, Same contact name",
        )
        self.assertNotIn(other_contact | other_number, lead.similar_lead_ids)

    def test_without_pg_trgm_exact_keys_still_match(self):
        lead = self._lead(partner_name="Quxbridge Logistic 44", contact_name="Ann Lee")
        typo = self._lead(partner_name="Quxbridge Logistics 44", contact_name="Ann Lee")
        same = self._lead(partner_name="QUXBRIDGE LOGISTIC 44 SRL")
        registry = self.env.registry
        self.addCleanup(setattr, registry, "has_trigram", registry.has_trigram)
        registry.has_trigram = False
        self.assertEqual(lead.similar_lead_ids, same)
        self.assertNotIn(typo, lead.similar_lead_ids)

    def test_leads_of_another_company_are_not_similar(self):
        john = self._john()
        self._john(company_id=self.company_2.id, team_id=False, user_id=self.user_company_2.id)
        self.assertFalse(john.similar_lead_ids)

    def test_own_documents_salesperson_sees_only_readable_similar_leads(self):
        mine = self._john(user_id=self.user_salesman_own.id)
        colleagues = self._john(user_id=self.user_salesman_all.id)
        mine_too = self._john(user_id=self.user_salesman_own.id)
        self.assertEqual(mine.similar_lead_ids, colleagues | mine_too)
        self.assertEqual(mine.with_user(self.user_salesman_own).similar_lead_ids, mine_too)

    def test_not_a_duplicate_is_remembered(self):
        john = self._john()
        namesake = self._john(name="Second deal")
        namesake.with_context(similar_to_lead_id=john.id).action_mark_not_duplicate()
        john.invalidate_recordset(["similar_lead_ids"])
        self.assertFalse(john.similar_lead_ids)
        self.assertFalse(namesake.similar_lead_ids)
        Cluster = self.env["crm.lead.duplicate.cluster"]
        Cluster._find_clusters([("id", "in", (john | namesake).ids)])
        self.assertFalse(Cluster.search([("lead_ids", "in", john.ids)]))

    def test_similar_leads_of_a_page_in_a_constant_number_of_queries(self):
        leads = self.env["crm.lead"].concat(*(self._john(name=f"Deal {n}") for n in range(30)))
        self.env.flush_all()
        for page in (leads[:3], leads):
            page.invalidate_recordset(["similar_lead_ids", "similar_lead_count"])
            with self.assertQueryCount(2):
                page.mapped("similar_lead_count")
        self.assertEqual(leads[0].similar_lead_count, 29)

    def test_similar_leads_button(self):
        john = self._john()
        copy = self._john(name="Copy")
        action = john.action_show_similar_leads()
        self.assertEqual(
            self.env["crm.lead"].with_context(**action["context"]).search(action["domain"]),
            john | copy,
        )


@tagged("post_install", "-at_install")
class TestDuplicateClusters(DuplicatesCommon):
    def _find(self, leads):
        Cluster = self.env["crm.lead.duplicate.cluster"]
        Cluster._find_clusters([("id", "in", leads.ids)])
        return Cluster.search([("lead_ids", "in", leads.ids), ("state", "=", "open")])

    def test_clusters_group_messy_duplicates_only(self):
        john = self._john()
        johns = john | self._lead(
            email_from="JOHN.SMITH12@ACME12.EXAMPLE.COM", contact_name="John Smith"
        )
        johns |= self._lead(
            phone="+1 (202) 555-0123", country_id=self.us.id, contact_name="john smith"
        )
        johns |= self._lead(partner_name="acme 12", contact_name="John  Smith", phone=False)
        mary = self._lead(
            contact_name="Mary Davis",
            partner_name="Zenith 4 LLC",
            email_from="mary@zenith4.example.com",
        )
        marys = mary | self._lead(contact_name="Mary Davis", partner_name="ZENITH 4, LLC")
        # Same switchboard number and company, or same name, another person: not the same.
        colleague = self._lead(
            contact_name="Paul Clark",
            partner_name="Acme 12",
            phone="+1 202 555 0123",
            country_id=self.us.id,
        )
        namesake = self._lead(
            contact_name="Mary Davis", phone="+1 202 555 0999", country_id=self.us.id
        )
        clusters = self._find(johns | marys | colleague | namesake)
        by_leads = {frozenset(cluster.lead_ids.ids): cluster for cluster in clusters}
        self.assertEqual(set(by_leads), {frozenset(johns.ids), frozenset(marys.ids)})
        john_cluster = by_leads[frozenset(johns.ids)]
        self.assertEqual(john_cluster.confidence, 85)
        self.assertEqual(
            john_cluster.reasons,
            "Same email, Same phone, Same company name, Same contact name, Same internet domain",
        )

    def test_clusters_never_span_companies(self):
        john = self._john()
        self._john(company_id=self.company_2.id, team_id=False, user_id=self.user_company_2.id)
        other_company = self.env["crm.lead"].search([("company_id", "=", self.company_2.id)])
        self.assertFalse(self._find(john | other_company))

    def test_finding_again_replaces_open_clusters(self):
        leads = self._john() | self._john() | self._john()
        first = self._find(leads)
        second = self._find(leads)
        self.assertEqual(len(second), 1)
        self.assertFalse(first.exists())
        self.assertEqual(second.lead_count, 3)

    def test_dismissed_cluster_stays_dismissed(self):
        leads = self._john() | self._john()
        cluster = self._find(leads)
        cluster.action_dismiss()
        self.assertEqual(cluster.state, "dismissed")
        self.assertFalse(self._find(leads))

    def test_lead_marked_not_duplicate_leaves_the_cluster_others_stay(self):
        first, second, third = self._john(), self._john(), self._john()
        second.with_context(similar_to_lead_id=first.id).action_mark_not_duplicate()
        third.with_context(similar_to_lead_id=second.id).action_mark_not_duplicate()
        clusters = self._find(first | second | third)
        self.assertEqual(clusters.lead_ids, first | third)

    def test_scan_wizard_by_team_and_bad_domain(self):
        other_team = self.env["crm.team"].create({"name": "Other team"})
        in_team = self._john() | self._john()
        self._john(team_id=other_team.id) | self._john(team_id=other_team.id)
        scan = self.env["crm.lead.duplicate.scan"].create({"team_id": self.sales_team.id})
        scan.action_scan()
        clusters = self.env["crm.lead.duplicate.cluster"].search([("state", "=", "open")])
        self.assertEqual(clusters.lead_ids, in_team)
        bad = self.env["crm.lead.duplicate.scan"].create(
            {"lead_domain": "[('no_such_field', '=', 1)]"}
        )
        with self.assertRaisesRegex(UserError, "not valid"):
            bad.action_scan()

    def test_cron_finds_clusters_over_all_leads(self):
        leads = self._john() | self._john()
        self.env.ref(
            "crm_pipeline_optimizer.ir_cron_crm_lead_find_duplicates"
        ).method_direct_trigger()
        cluster = self.env["crm.lead.duplicate.cluster"].search([("lead_ids", "in", leads.ids)])
        self.assertEqual(cluster.lead_ids, leads)

    def test_merge_clusters_in_bulk(self):
        johns = self._john() | self._john(name="John again")
        marys = self._lead(email_from="mary@z.example.com") | self._lead(
            email_from="MARY@z.example.com"
        )
        clusters = self._find(johns | marys)
        clusters.action_merge()
        self.assertEqual(clusters.mapped("state"), ["merged", "merged"])
        self.assertEqual(len((johns | marys).exists()), 2)
        self.assertEqual(clusters.merged_lead_id, (johns | marys).exists())

    def test_bulk_merge_is_all_or_nothing(self):
        johns = self._john() | self._john(name="John again")
        won = self._lead(email_from="w@z.example.com", stage_id=self.stage_won.id)
        won_too = self._lead(email_from="w@z.example.com", stage_id=self.stage_won.id)
        clusters = self._find(johns | won | won_too)
        with self.assertRaisesRegex(UserError, "Two won deals"):
            clusters.action_merge()
        self.assertEqual(len((johns | won | won_too).exists()), 4)

    @users("pipeline_salesman_all")
    def test_salesperson_has_no_duplicates_centre(self):
        with self.assertRaises(AccessError):
            self.env["crm.lead.duplicate.cluster"].search([])
        with self.assertRaises(AccessError):
            self.env["crm.lead.duplicate.scan"].create({})

    def test_clusters_of_another_company_are_hidden(self):
        leads = self._john(
            company_id=self.company_2.id, team_id=False, user_id=self.user_company_2.id
        )
        leads |= self._john(
            company_id=self.company_2.id, team_id=False, user_id=self.user_company_2.id
        )
        self._find(leads)
        Cluster = self.env["crm.lead.duplicate.cluster"].with_user(self.user_sales_manager)
        self.assertFalse(Cluster.search([("lead_ids", "in", leads.ids)]))


@tagged("post_install", "-at_install")
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
