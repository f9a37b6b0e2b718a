import random

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import SQL, mute_logger

from .common import PipelineOptimizerCommon


class LeadScoringCommon(PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Criterion = cls.env["crm.lead.scoring.criterion"]
        cls.Factor = cls.env["crm.lead.scoring.factor"]
        # No closed history: the score is the qualification part alone until a test
        # builds one.
        cls.env["crm.lead"].with_context(active_test=False).search(
            ["|", ("active", "=", False), ("stage_id.is_won", "=", True)]
        ).unlink()
        cls.Factor._rebuild()
        cls.source_web = cls.env["utm.source"].create({"name": "Web form"})
        cls.source_fair = cls.env["utm.source"].create({"name": "Trade fair"})

    def _lead(self, **values):
        return (
            self.env["crm.lead"]
            .create(
                {
                    "name": "Scored deal",
                    "type": "opportunity",
                    "team_id": self.sales_team.id,
                    "user_id": self.user_salesman_own.id,
                    **values,
                }
            )
            .with_user(self.env.user)
        )

    def _only_criterion(self, points):
        """Archive the seeded criteria and keep one that every 'Boundary' lead matches."""
        self.Criterion.search([]).active = False
        return self.Criterion.create(
            {
                "name": "Boundary",
                "points": points,
                "domain": "[('name', '=like', 'Boundary%')]",
                "company_id": False,
            }
        )


@tagged("lead_scoring", "post_install", "-at_install")
class TestLeadScore(LeadScoringCommon):
    def test_fully_qualified_lead_scores_100_and_three_stars(self):
        lead = self._lead(
            is_budget_confirmed=True,
            has_decision_maker=True,
            purchase_timeline="90_days",
            has_pain_point=True,
            employee_count=120,
        )
        self.assertEqual(lead.score, 100)
        self.assertEqual(lead.priority, "3")

    def test_unqualified_lead_scores_0_and_no_star(self):
        lead = self._lead()
        self.assertEqual(lead.score, 0)
        self.assertEqual(lead.priority, "0")

    def test_seeded_weights(self):
        expected = {
            "is_budget_confirmed": (True, 30),
            "has_decision_maker": (True, 25),
            "purchase_timeline": ("90_days", 20),
            "has_pain_point": (True, 15),
            "employee_count": (50, 10),
        }
        for fname, (value, points) in expected.items():
            with self.subTest(field=fname):
                self.assertEqual(self._lead(**{fname: value}).score, points)

    def test_company_size_fit_bounds(self):
        self.assertEqual(self._lead(employee_count=49).score, 0)
        self.assertEqual(self._lead(employee_count=500).score, 10)
        self.assertEqual(self._lead(employee_count=501).score, 0)

    def test_star_boundaries(self):
        criterion = self._only_criterion(0)
        lead = self._lead(name="Boundary deal")
        for points, stars in ((25, "0"), (26, "1"), (50, "1"), (51, "2"), (75, "2"), (76, "3")):
            with self.subTest(points=points):
                criterion.points = points
                lead._update_scores()
                self.assertEqual(lead.score, points)
                self.assertEqual(lead.priority, stars)

    def test_score_is_clamped(self):
        criterion = self._only_criterion(140)
        lead = self._lead(name="Boundary high")
        self.assertEqual(lead.score, 100)
        criterion.points = -40
        lead._update_scores()
        self.assertEqual(lead.score, 0)

    def test_disqualifier_subtracts_points(self):
        self.Criterion.create(
            {
                "name": "Student project",
                "points": -20,
                "domain": "[('name', 'ilike', 'student')]",
                "company_id": False,
            }
        )
        self.env.registry.clear_cache()
        lead = self._lead(name="Student thesis", is_budget_confirmed=True, has_decision_maker=True)
        self.assertEqual(lead.score, 35)

    def test_criterion_on_related_records(self):
        vip = self.env["crm.tag"].create({"name": "VIP"})
        self.Criterion.create(
            {
                "name": "VIP account in a won-able stage",
                "points": 20,
                "domain": "[('tag_ids.name', '=', 'VIP'), ('stage_id.is_won', '=', False)]",
                "company_id": False,
            }
        )
        tagged_lead = self._lead(tag_ids=[(6, 0, vip.ids)], stage_id=self.stage_new.id)
        plain_lead = self._lead(stage_id=self.stage_new.id)
        self.assertEqual(tagged_lead.score, 20)
        self.assertEqual(plain_lead.score, 0)
        self.env["crm.lead"]._update_all_scores()
        self.assertEqual((tagged_lead | plain_lead).mapped("score"), [20, 0])

    def test_custom_thresholds(self):
        self.company_main.write(
            {
                "score_threshold_one_star": 10,
                "score_threshold_two_stars": 20,
                "score_threshold_three_stars": 40,
            }
        )
        lead = self._lead(is_budget_confirmed=True)
        self.assertEqual(lead.priority, "2")

    def test_explanation_names_each_criterion_and_its_points(self):
        lead = self._lead(is_budget_confirmed=True, has_decision_maker=True)
        explanation = str(lead.score_explanation)
        self.assertIn("+30 Budget confirmed", explanation)
        self.assertIn("+25 Decision maker identified", explanation)
        self.assertIn("Qualification: 55 / 100", explanation)
        self.assertIn("No won or lost history", explanation)
        self.assertNotIn("Current pain point", explanation)

    def test_rescoring_does_not_touch_write_date(self):
        criterion = self._only_criterion(60)
        lead = self._lead(name="Boundary deal")
        self.assertEqual(lead.score, 60)
        lead.flush_recordset()
        self.env.cr.execute(
            "UPDATE crm_lead SET write_date = '2020-01-01' WHERE id = %s", [lead.id]
        )
        lead.invalidate_recordset()
        criterion.points = 70
        lead._update_scores()
        self.assertEqual(lead.score, 70)
        self.assertEqual(str(lead.write_date), "2020-01-01 00:00:00")


@tagged("lead_scoring", "post_install", "-at_install")
class TestLeadScoreIncremental(LeadScoringCommon):
    def test_ticking_a_fact_rescores_at_once(self):
        lead = self._lead()
        lead.with_user(self.user_salesman_own).is_budget_confirmed = True
        self.assertEqual(lead.score, 30)
        self.assertEqual(lead.priority, "1")

    def test_rescoring_one_lead_after_a_write_is_one_query(self):
        lead = self._lead()
        lead.is_budget_confirmed = True
        lead.flush_recordset()
        self.env["crm.lead"]._score_criteria()  # criteria are cached between writes
        with self.assertQueryCount(1):
            lead._update_scores()
        self.assertEqual(lead.score, 30)

    def test_write_and_rescore_of_one_lead_stay_under_five_queries(self):
        lead = self._lead()
        lead.flush_recordset()
        self.env["crm.lead"]._score_criteria()
        with self.assertQueryCount(4):
            lead.write({"has_decision_maker": True})
        self.assertEqual(lead.score, 25)

    def test_rescoring_is_one_query_whatever_the_number_of_leads(self):
        self.env["crm.lead"]._score_criteria()
        for count in (5, 50):
            leads = self.env["crm.lead"].create(
                [{"name": f"Bulk {n}", "is_budget_confirmed": True} for n in range(count)]
            )
            leads.flush_recordset()
            with self.assertQueryCount(1):
                leads._update_scores()
            self.assertEqual(set(leads.mapped("score")), {30})

    def test_unrelated_write_does_not_rescore(self):
        lead = self._lead()
        lead.flush_recordset()
        with self.assertQueryCount(1):
            lead.write({"description": "Met at the fair"})
            lead.flush_recordset()

    def test_criteria_change_rescores_in_the_background(self):
        cron = self.env.ref("crm_pipeline_optimizer.ir_cron_crm_lead_scoring")
        Trigger = self.env["ir.cron.trigger"]
        before = Trigger.search_count([("cron_id", "=", cron.id)])
        lead = self._lead(has_pain_point=True)
        self.assertEqual(lead.score, 15)
        self.env.ref("crm_pipeline_optimizer.scoring_criterion_pain_point").points = 40
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), before + 1)
        self.assertEqual(lead.score, 15, "not rescored inside the user's request")
        self.env["crm.lead"]._cron_update_scores()
        self.assertEqual(lead.score, 40)

    def test_full_rescoring_is_idempotent(self):
        self._lead(is_budget_confirmed=True)
        self.env["crm.lead"]._update_all_scores()
        seen, changed = self.env["crm.lead"]._update_all_scores()
        self.assertGreaterEqual(seen, 1)
        self.assertEqual(changed, 0)

    def test_full_rescoring_updates_an_explanation_whose_score_is_unchanged(self):
        self.Criterion.search([]).active = False
        budget = self.Criterion.create(
            {"name": "Budget", "points": 20, "domain": "[('is_budget_confirmed', '=', True)]"}
        )
        pain = self.Criterion.create(
            {"name": "Pain", "points": 20, "domain": "[('has_pain_point', '=', True)]"}
        )
        lead = self._lead(is_budget_confirmed=True)
        self.env["crm.lead"]._update_all_scores()
        self.assertIn("+20 Budget", str(lead.score_explanation))
        # Same points, other criterion: the score stays 20, its explanation changes.
        budget.domain = "[('has_pain_point', '=', True)]"
        pain.domain = "[('is_budget_confirmed', '=', True)]"
        _seen, changed = self.env["crm.lead"]._update_all_scores()
        self.assertGreaterEqual(changed, 1)
        self.assertEqual(lead.score, 20)
        self.assertIn("+20 Pain", str(lead.score_explanation))
        self.assertNotIn("Budget", str(lead.score_explanation))

    def test_scores_stored_without_a_signature_are_rewritten_once(self):
        lead = self._lead(is_budget_confirmed=True)
        self.env["crm.lead"]._update_all_scores()
        self.env.cr.execute(
            "UPDATE crm_lead SET score_details = score_details - 'signature' WHERE id = %s",
            [lead.id],
        )
        lead.invalidate_recordset()
        self.assertEqual(self.env["crm.lead"]._update_all_scores()[1], 1)
        self.assertIn("signature", lead.score_details)
        self.assertEqual(self.env["crm.lead"]._update_all_scores()[1], 0)

    def test_won_and_lost_leads_are_not_rescored_in_bulk(self):
        lead = self._lead()
        lead.action_set_won()
        self._only_criterion(90)
        lead.name = "Boundary won"
        lead.flush_recordset()
        self.assertEqual(lead.score, 90, "a write of a field a criterion reads rescores")
        self.env.cr.execute("UPDATE crm_lead SET score = 7 WHERE id = %s", [lead.id])
        lead.invalidate_recordset()
        self.env["crm.lead"]._update_all_scores()
        self.assertEqual(lead.score, 7)


@tagged("lead_scoring", "post_install", "-at_install")
class TestLeadScoreManualStars(LeadScoringCommon):
    def test_stars_set_by_hand_are_kept(self):
        lead = self._lead()
        lead.with_user(self.user_salesman_own).priority = "3"
        self.assertTrue(lead.is_priority_manual)
        lead.is_budget_confirmed = True
        self.env["crm.lead"]._update_all_scores()
        self.assertEqual(lead.priority, "3")
        self.assertEqual(lead.score_priority_rule, "Stars set by hand")

    def test_reset_to_automatic_follows_the_score(self):
        lead = self._lead(is_budget_confirmed=True, has_decision_maker=True)
        lead.priority = "0"
        lead.with_user(self.user_salesman_own).action_reset_priority_automatic()
        self.assertFalse(lead.is_priority_manual)
        self.assertEqual(lead.priority, "2")
        self.assertIn("Stars follow the score", lead.score_priority_rule)

    def test_new_lead_in_the_form_gets_its_qualification_score_live(self):
        form_lead = self.env["crm.lead"].new({"name": "Draft", "is_budget_confirmed": True})
        self.assertEqual(form_lead.score, 30)
        self.assertIn("+30 Budget confirmed", str(form_lead.score_explanation))

    def test_stars_given_at_creation_are_manual(self):
        lead = self._lead(priority="2")
        self.assertTrue(lead.is_priority_manual)
        self.assertEqual(lead.priority, "2")

    def test_lead_without_company_gets_the_same_stars_from_the_form_and_the_rescoring(self):
        """A lead without a company is scored with the default settings, whoever saves it:
        the stars computed when it is saved are those the nightly rescoring gives."""
        self.company_main.write(
            {
                "score_threshold_one_star": 10,
                "score_threshold_two_stars": 20,
                "score_threshold_three_stars": 30,
            }
        )
        lead = self.env["crm.lead"].create(
            {"name": "No company", "type": "opportunity", "is_budget_confirmed": True}
        )
        lead.company_id = False
        self.env.flush_all()
        self.assertFalse(lead.company_id)
        self.assertEqual(lead.score, 30)
        saved = lead.priority
        self.env["crm.lead"]._update_all_scores()
        self.assertEqual(lead.priority, saved)
        self.assertEqual(lead.priority, "1")  # 30 > 25, the default one-star threshold
        self.assertIn("one above 25", lead.score_priority_rule)

    def test_card_badge_reads_the_company_thresholds(self):
        """The kanban card colours the score badge by the stars the score gives, so a
        company's thresholds decide it, not numbers written in the view."""
        lead = self._lead(is_budget_confirmed=True)  # 30 points
        self.assertEqual(lead.score, 30)
        self.assertEqual(lead.score_stars, 1)
        self.company_main.write(
            {
                "score_threshold_one_star": 5,
                "score_threshold_two_stars": 10,
                "score_threshold_three_stars": 29,
            }
        )
        lead.invalidate_recordset(["score_stars"])
        self.assertEqual(lead.score_stars, 3)
        arch = self.env["crm.lead"].get_view(view_type="kanban")["arch"]
        self.assertIn("record.score_stars.raw_value", arch)
        self.assertNotIn("record.score.raw_value &gt; 75", arch)


@tagged("lead_scoring", "post_install", "-at_install")
class TestLeadScoreLearned(LeadScoringCommon):
    def _history(self, source, won, lost):
        Lead = self.env["crm.lead"]
        deals = Lead.create(
            [
                {
                    "name": f"History {source.name} {n}",
                    "type": "opportunity",
                    "source_id": source.id,
                }
                for n in range(won + lost)
            ]
        )
        deals[:won].action_set_won()
        deals[won:].action_set_lost()

    def test_learned_part_follows_the_source_history(self):
        self._history(self.source_web, won=18, lost=2)
        self._history(self.source_fair, won=2, lost=18)
        self.env["crm.lead"]._update_all_scores()
        from_web = self._lead(source_id=self.source_web.id)
        from_fair = self._lead(source_id=self.source_fair.id)
        self.assertGreater(from_web.score_learned, 60)
        self.assertLess(from_fair.score_learned, 40)
        self.assertGreater(from_web.score, from_fair.score)

    def test_learned_part_is_blended_by_its_weight(self):
        self._history(self.source_web, won=15, lost=5)
        self.env["crm.lead"]._update_all_scores()
        lead = self._lead(source_id=self.source_web.id, is_budget_confirmed=True)
        learned = lead.score_learned
        self.assertEqual(lead.score, round(0.7 * 30 + 0.3 * learned))
        self.assertIn(
            f"won and lost deals: {learned} % win likelihood", str(lead.score_explanation)
        )
        self.company_main.score_learned_weight = 0
        self.env["crm.lead"]._update_all_scores()
        self.assertEqual(lead.score, 30)

    def test_learned_move_that_keeps_the_score_is_not_written(self):
        """Relearning moves many leads' likelihood by a point or two without changing their
        score: those leads are not rewritten, and the stored explanation still gives the
        stored score. A change of the score (here through the weight) writes it all."""
        self.company_main.score_learned_weight = 1
        self._history(self.source_web, won=15, lost=5)
        Lead = self.env["crm.lead"]
        Lead._update_all_scores()
        lead = self._lead(source_id=self.source_web.id, is_budget_confirmed=True)
        stored = (lead.score, lead.score_learned)
        self._history(self.source_web, won=0, lost=10)
        Lead._update_all_scores()
        fresh_score, _rule, fresh_learned, _details, _stars = lead._score_values()[lead.id]
        self.assertLess(fresh_learned, stored[1], "ten more lost deals lower the likelihood")
        self.assertEqual(fresh_score, stored[0], "1 % weight: the score does not move")
        lead.invalidate_recordset()
        self.assertEqual((lead.score, lead.score_learned), stored, "not rewritten")
        self.company_main.score_learned_weight = 50
        Lead._update_all_scores()
        half_up = (50 * 30 + 50 * fresh_learned + 50) // 100
        self.assertEqual((lead.score, lead.score_learned), (half_up, fresh_learned))

    def test_the_records_scoring_and_the_bulk_rescoring_agree(self):
        """The ORM scores the leads at hand from memory (no flush, one query), the nightly
        rescoring from the table: for random leads, criteria of every kind (inline, joined,
        restricted to a team or a company) and a learned history with tags, both give the
        same score, parts and explanation."""
        rng = random.Random(18)
        vip, urgent = self.env["crm.tag"].create([{"name": "VIP"}, {"name": "Urgent"}])
        belgium = self.env.ref("base.be")
        customers = self.env["res.partner"].create(
            [{"name": "Belgian customer", "country_id": belgium.id}, {"name": "Other customer"}]
        )
        other_team = self.env["crm.team"].create({"name": "Agreement team"})
        self.Criterion.create(
            [
                {
                    "name": "Gmail",
                    "points": 7,
                    "domain": "[('email_from', '=ilike', '%@gmail.com')]",
                },
                {
                    "name": "Belgian",
                    "points": 11,
                    "domain": "[('partner_id.country_id.code', '=', 'BE')]",
                },
                {"name": "VIP", "points": 13, "domain": f"[('tag_ids', 'in', {vip.ids})]"},
                {"name": "Big", "points": 9, "domain": "[('expected_revenue', '>', 5000)]"},
                {"name": "Team only", "points": 5, "domain": "[]", "team_id": other_team.id},
                {
                    "name": "Company only",
                    "points": -4,
                    "domain": "[('has_pain_point', '=', False)]",
                    "company_id": self.company_main.id,
                },
            ]
        )
        history = self.env["crm.lead"].create(
            [
                {
                    "name": f"Agreement history {n}",
                    "type": "opportunity",
                    "source_id": rng.choice([self.source_web, self.source_fair]).id,
                    "tag_ids": [(6, 0, rng.choice([[], vip.ids, urgent.ids, (vip | urgent).ids]))],
                }
                for n in range(40)
            ]
        )
        history[:25].action_set_won()
        history[25:].action_set_lost()
        self.env["crm.lead"]._update_all_scores()

        leads = self.env["crm.lead"].create(
            [
                {
                    "name": f"Agreement {n}",
                    "type": rng.choice(["lead", "opportunity"]),
                    "email_from": rng.choice(
                        ["a@gmail.com", "b@GMAIL.com", "c@example.com", False]
                    ),
                    "partner_id": rng.choice([*customers.ids, False]),
                    "tag_ids": [(6, 0, rng.choice([[], vip.ids, urgent.ids, (vip | urgent).ids]))],
                    "expected_revenue": rng.choice([0, 5000, 5001, 20000]),
                    "team_id": rng.choice([self.sales_team, other_team]).id,
                    "source_id": rng.choice(
                        [self.source_web, self.source_fair, self.env["utm.source"]]
                    ).id,
                    "is_budget_confirmed": rng.random() < 0.5,
                    "has_pain_point": rng.random() < 0.5,
                    "employee_count": rng.choice([0, 50, 600]),
                }
                for n in range(60)
            ]
        )
        from_records = {
            lead.id: (lead.score, lead.score_rule, lead.score_learned, lead.score_details)
            for lead in leads
        }
        self.assertGreater(len({row[0] for row in from_records.values()}), 10, "varied scores")
        self.assertTrue(all(row[2] for row in from_records.values()), "learned part present")
        _scored, changed = leads._update_scores_where(
            SQL("crm_lead.id IN %s", tuple(leads.ids)), [("id", "in", leads.ids)]
        )
        self.assertEqual(changed, 0, "the bulk rescoring finds nothing to change")
        leads.invalidate_recordset()
        for lead in leads:
            self.assertEqual(
                (lead.score, lead.score_rule, lead.score_learned, lead.score_details),
                from_records[lead.id],
                lead.name,
            )

    def test_factors_are_learned_per_company(self):
        self._history(self.source_web, won=10, lost=10)
        self.env["crm.lead"]._update_all_scores()
        companies = set(self.Factor.search([]).mapped("company_id"))
        self.assertEqual(companies, {self.company_main})
        base = self.Factor.search([("variable", "=", "base")])
        self.assertEqual((base.won_count, base.lost_count), (10, 10))


@tagged("lead_scoring", "post_install", "-at_install")
class TestLeadScoreConfiguration(LeadScoringCommon):
    def test_invalid_condition_is_refused_with_its_name(self):
        with self.assertRaisesRegex(ValidationError, "Too good to be true"):
            self.Criterion.create(
                {
                    "name": "Too good to be true",
                    "points": 5,
                    "domain": "[('no_such_field', '=', 1)]",
                }
            )
        with self.assertRaisesRegex(ValidationError, "Not a list"):
            self.Criterion.create({"name": "Not a list", "points": 5, "domain": "42"})

    def test_thresholds_must_increase(self):
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            self.company_main.write(
                {"score_threshold_one_star": 60, "score_threshold_two_stars": 50}
            )
        self.assertEqual(self.company_main.score_threshold_one_star, 25)
        self.assertEqual(self.company_main.score_threshold_two_stars, 50)

    def test_settings_change_rescores_in_the_background(self):
        cron = self.env.ref("crm_pipeline_optimizer.ir_cron_crm_lead_scoring")
        before = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        settings = self.env["res.config.settings"].create({"score_threshold_three_stars": 90})
        settings.execute()
        self.assertEqual(self.company_main.score_threshold_three_stars, 90)
        after = self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])
        self.assertEqual(after, before + 1)


@tagged("lead_scoring", "post_install", "-at_install")
class TestLeadScoreAccess(LeadScoringCommon):
    @users("pipeline_salesman_own", "pipeline_salesman_all")
    @mute_logger("odoo.addons.base.models.ir_model")
    def test_salespeople_read_but_cannot_edit_criteria(self):
        criterion = self.env.ref("crm_pipeline_optimizer.scoring_criterion_budget").with_env(
            self.env
        )
        self.assertEqual(criterion.points, 30)
        with self.assertRaises(AccessError):
            criterion.points = 90
        with self.assertRaises(AccessError):
            self.env["crm.lead.scoring.criterion"].create(
                {"name": "Mine", "points": 50, "domain": "[]"}
            )

    @users("pipeline_salesman_own")
    @mute_logger("odoo.addons.base.models.ir_model")
    def test_salespeople_cannot_read_learned_factors(self):
        with self.assertRaises(AccessError):
            self.env["crm.lead.scoring.factor"].search([])

    @users("pipeline_sales_manager")
    def test_sales_manager_edits_criteria(self):
        criterion = self.env["crm.lead.scoring.criterion"].create(
            {"name": "Referral", "points": 10, "domain": "[('referred', '!=', False)]"}
        )
        self.assertEqual(criterion.company_id, self.company_main)

    def test_criterion_of_another_company_is_invisible_and_does_not_apply(self):
        self.Criterion.create(
            {
                "name": "Company 2 rule",
                "points": 50,
                "domain": "[]",
                "company_id": self.company_2.id,
            }
        )
        self.env.registry.clear_cache()
        lead = self._lead()
        self.assertEqual(lead.score, 0)
        visible = self.Criterion.with_user(self.user_salesman_all).search([])
        self.assertNotIn("Company 2 rule", visible.mapped("name"))
        seen_by_c2 = self.Criterion.with_user(self.user_company_2).search([])
        self.assertIn("Company 2 rule", seen_by_c2.mapped("name"))
        lead_c2 = self.env["crm.lead"].create(
            {"name": "C2 deal", "type": "opportunity", "company_id": self.company_2.id}
        )
        self.assertEqual(lead_c2.score, 50)
