import re

import polib

from odoo.modules.module import get_module_path
from odoo.tests import HttpCase, tagged

from .common import PipelineOptimizerCommon

MODULE = "crm_pipeline_optimizer"
# Odoo language code: the file its terms come from.
LANGUAGES = {"ar_001": "ar", "fa_IR": "fa", "ro_RO": "ro", "vi_VN": "vi"}
# Words spelt the same in the language as in English.
SAME_AS_ENGLISH = {"ro": {"Indicator", "Total"}}
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[+]?[sd]|%s|%%|\{\{.*?\}\}|t-out=\"[^\"]*\"|<[a-z]+")


def _has_words(text):
    """The term says something to translate: words outside its placeholders and markup."""
    return re.search(r"[A-Za-z]{4,}", re.sub(r"<[^>]*>|\{\{.*?\}\}|%\([a-z_]+\)", "", text))


def _i18n_file(name):
    return f"{get_module_path(MODULE)}/i18n/{name}"


def _load_languages(env):
    for code in LANGUAGES:
        env["res.lang"]._activate_lang(code)
    env["ir.module.module"]._load_module_terms([MODULE], list(LANGUAGES), overwrite=True)


@tagged("i18n", "post_install", "-at_install")
class TestTranslationFiles(PipelineOptimizerCommon):
    def test_every_term_is_translated_in_every_language(self):
        template = polib.pofile(_i18n_file(f"{MODULE}.pot"))
        self.assertGreater(len(template), 200)
        for code in LANGUAGES.values():
            with self.subTest(language=code):
                translations = {
                    entry.msgid: entry for entry in polib.pofile(_i18n_file(f"{code}.po"))
                }
                missing = [e.msgid[:60] for e in template if e.msgid not in translations]
                self.assertFalse(missing, f"{code}.po lacks terms: {missing[:5]}")
                # A term with no words (placeholders, markup) or spelt as in English stays
                # empty, as the OCA's translation checks write it: Odoo shows the source.
                empty = [
                    m[:60]
                    for m, e in translations.items()
                    if not e.msgstr and _has_words(m) and m not in SAME_AS_ENGLISH.get(code, ())
                ]
                self.assertFalse(empty, f"{code}.po has untranslated terms: {empty[:5]}")
                fuzzy = [m[:60] for m, e in translations.items() if "fuzzy" in e.flags]
                self.assertFalse(fuzzy, f"{code}.po has fuzzy terms: {fuzzy[:5]}")
                untouched = [
                    m[:60]
                    for m, e in translations.items()
                    if e.msgstr == m and m not in SAME_AS_ENGLISH.get(code, ()) and _has_words(m)
                ]
                self.assertFalse(untouched, f"{code}.po copies English: {untouched[:5]}")
                broken = [
                    m[:60]
                    for m, e in translations.items()
                    if "{{" not in m
                    and e.msgstr
                    and sorted(PLACEHOLDER.findall(m)) != sorted(PLACEHOLDER.findall(e.msgstr))
                ]
                self.assertFalse(broken, f"{code}.po changes placeholders: {broken[:5]}")


@tagged("i18n", "post_install", "-at_install")
class TestTranslatedEmails(PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _load_languages(cls.env)

    def test_each_template_renders_in_each_language(self):
        greetings = {
            "ar_001": "عزيزي/عزيزتي",
            "fa_IR": "جناب/سرکار",
            "ro_RO": "Stimate/Stimată",
            "vi_VN": "Kính gửi",
        }
        closings = {
            "ar_001": "مع أطيب التحيات",
            "fa_IR": "با احترام",
            "ro_RO": "Cu stimă",
            "vi_VN": "Trân trọng",
        }
        xmlids = (
            "mail_template_initial_outreach",
            "mail_template_meeting_confirmation",
            "mail_template_proposal_delivery",
            "mail_template_meeting_summary",
            "mail_template_won_lost_followup",
        )
        for lang in LANGUAGES:
            customer = self.env["res.partner"].create(
                {"name": f"Customer {lang}", "email": f"{lang}@example.com", "lang": lang}
            )
            lead = self.env["crm.lead"].create(
                {"name": "Fleet tracking", "type": "opportunity", "partner_id": customer.id}
            )
            for xmlid in xmlids:
                with self.subTest(lang=lang, template=xmlid):
                    template = self.env.ref(f"{MODULE}.{xmlid}")
                    rendered_lang = template._render_lang(lead.ids)[lead.id]
                    self.assertEqual(rendered_lang, lang)
                    body = template.with_context(lang=lang)._render_field("body_html", lead.ids)[
                        lead.id
                    ]
                    self.assertIn(f"{greetings[lang]} Customer {lang}", str(body))
                    self.assertIn(closings[lang], str(body))
                    self.assertNotIn("Best regards", str(body))
                    subject = template.with_context(lang=lang)._render_field("subject", lead.ids)[
                        lead.id
                    ]
                    self.assertIn("Fleet tracking", subject)

    def test_errors_speak_the_user_language(self):
        # As in a request of a Romanian user: the context carries their language.
        self.user_sales_manager.lang = "ro_RO"
        stage = self.stage_negotiation.with_user(self.user_sales_manager).with_context(lang="ro_RO")
        with self.assertRaisesRegex(Exception, "zilele așteptate nu pot fi negative"):
            stage.expected_days_min = -1


@tagged("i18n", "post_install", "-at_install")
class TestRightToLeft(HttpCase, PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _load_languages(cls.env)
        cls.user_salesman_own.lang = "ar_001"
        stuck = cls.env["crm.lead"].create(
            {
                "name": "Arabic stuck deal",
                "type": "opportunity",
                "user_id": cls.user_salesman_own.id,
                "team_id": cls.sales_team.id,
                "stage_id": cls.stage_negotiation.id,
            }
        )
        cls._backdate(stuck, stage_days=30, idle_days=10)

    def test_arabic_salesperson_works_right_to_left(self):
        self.start_tour(
            "/odoo/crm", "crm_pipeline_optimizer_arabic", login=self.user_salesman_own.login
        )

    def test_persian_salesperson_works_right_to_left(self):
        self.user_salesman_own.lang = "fa_IR"
        self.start_tour(
            "/odoo/crm", "crm_pipeline_optimizer_persian", login=self.user_salesman_own.login
        )


@tagged("i18n", "post_install", "-at_install")
class TestTranslatedStageGuidance(PipelineOptimizerCommon):
    """The exit criteria the module writes on crm's stages come from this module's
    translation files, under crm's external ids."""

    def test_template_carries_the_terms_written_on_crm_stages(self):
        template = polib.pofile(_i18n_file(f"{MODULE}.pot"))
        entry = template.find("First contact made.")
        self.assertIn(("model:crm.stage,exit_criteria:crm.stage_lead1", ""), entry.occurrences)

    def test_a_language_activated_later_reads_the_guidance_and_the_checks(self):
        self.env["res.lang"]._activate_lang("fa_IR")
        # What activating a language runs for each installed module, crm first.
        modules = self.env["ir.module.module"].search([("name", "in", ["crm", MODULE])])
        modules._update_translations("fa_IR")
        persian = self.env(context={"lang": "fa_IR"})
        stage_new = self.stage_new.with_env(persian)
        self.assertEqual(stage_new.exit_criteria, "نخستین تماس برقرار شد.")
        self.assertEqual(self.stage_won.with_env(persian).exit_criteria, "قرارداد امضا شد.")
        check = self.env.ref(f"{MODULE}.exit_check_first_contact").with_env(persian)
        self.assertEqual(check.name, "نخستین تماس برقرار شد")
        self.assertEqual(self.stage_new.exit_criteria, "First contact made.", "English stays")
        # A consultant's own wording survives an upgrade, which loads the terms again.
        stage_new.exit_criteria = "با مشتری تماس گرفته شد."
        self.env["ir.module.module"]._load_module_terms([MODULE], ["fa_IR"])
        stage_new.invalidate_recordset()
        self.assertEqual(stage_new.exit_criteria, "با مشتری تماس گرفته شد.")
