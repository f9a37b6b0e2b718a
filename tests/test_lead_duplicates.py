from odoo.addons.crm_pipeline_optimizer import hooks
from odoo.addons.crm_pipeline_optimizer.models.crm_lead_duplicate import MATCH_KEYS_PENDING_PARAM
from odoo.addons.crm_pipeline_optimizer.rules import match_keys
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged, users

from .common import DuplicatesCommon


@tagged("duplicates", "post_install", "-at_install")
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

    def test_a_large_install_leaves_scores_and_keys_to_the_scheduler(self):
        """Above INSTALL_INLINE_LEADS leads, the install triggers the scoring job and the
        match keys job instead of computing them; the keys job then does a batch a run,
        saying how many leads are left, until every lead has its keys."""
        leads = self._john() | self._lead(
            phone="0721 234 567", country_id=self.ro.id, partner_name="Olt Construct SA"
        )
        expected = leads.read(list(match_keys.MATCH_KEY_FIELDS))
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE crm_lead SET email_match_key = NULL, phone_match_key = NULL, "
            "company_match_key = NULL, contact_match_key = NULL, domain_match_key = NULL"
        )
        self.env["crm.lead"].invalidate_model()
        self.patch(hooks, "INSTALL_INLINE_LEADS", 0)
        triggers = self.env["ir.cron.trigger"].sudo()
        before = triggers.search([])
        hooks._post_init_score_leads(self.env)
        triggered = (triggers.search([]) - before).cron_id
        self.assertEqual(
            set(triggered.ids),
            {
                self.env.ref("crm_pipeline_optimizer.ir_cron_crm_lead_scoring").id,
                self.env.ref("crm_pipeline_optimizer.ir_cron_crm_lead_match_keys").id,
            },
        )
        self.assertFalse(leads[0].email_match_key, "not computed by the install")
        progress = []
        self.patch(
            type(self.env["ir.cron"]),
            "_notify_progress",
            lambda cron, done, remaining, deactivate=False: progress.append(remaining),
        )
        Lead = self.env["crm.lead"]
        total = Lead.with_context(active_test=False).search_count([])
        for _run in range(total):
            Lead._cron_fill_match_keys(batch_size=2)
            if not progress[-1]:
                break
        self.assertEqual(progress, list(range(total - 2, -1, -2)) + ([0] if total % 2 else []))
        self.assertFalse(self.env["ir.config_parameter"].sudo().get_param(MATCH_KEYS_PENDING_PARAM))
        self.assertEqual(leads.read(list(match_keys.MATCH_KEY_FIELDS)), expected)
        runs = len(progress)
        Lead._cron_fill_match_keys()
        self.assertEqual(len(progress), runs, "nothing pending: a daily run does nothing")


@tagged("duplicates", "post_install", "-at_install")
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


@tagged("duplicates", "post_install", "-at_install")
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
