from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.addons.crm_pipeline_optimizer.models.crm_lead_stage_clock import CrmLead
from odoo.exceptions import ValidationError
from odoo.tests import freeze_time, tagged
from odoo.tools import SQL, mute_logger

from .common import T0, StaleDealsCommon


@tagged("stage_clock", "post_install", "-at_install")
class TestStageClock(StaleDealsCommon):
    def test_days_in_stage_and_sla_boundaries(self):
        """Negotiation expects 7–21 days: on track to day 15, at risk from day 16 (three
        quarters of 21), overdue from day 22. Whole days: day 21 at 23:59 is still 21."""
        lead = self._opportunity(stage=self.stage_negotiation)
        cases = [
            (timedelta(days=15, hours=23), 15, "on_track"),
            (timedelta(days=16), 16, "at_risk"),
            (timedelta(days=21, hours=23, minutes=59), 21, "at_risk"),
            (timedelta(days=22), 22, "overdue"),
        ]
        for elapsed, days, state in cases:
            with self.subTest(elapsed=elapsed), freeze_time(T0 + elapsed):
                lead.invalidate_recordset(["days_in_stage", "sla_state"])
                self.assertEqual(lead.days_in_stage, days)
                self.assertEqual(lead.sla_state, state)
                # The search says the same as the computed field.
                for other in ("on_track", "at_risk", "overdue"):
                    found = self.Lead.search([("id", "=", lead.id), ("sla_state", "=", other)])
                    self.assertEqual(bool(found), other == state, other)
                self.assertTrue(
                    self.Lead.search([("id", "=", lead.id), ("days_in_stage", "=", days)])
                )
                self.assertFalse(
                    self.Lead.search([("id", "=", lead.id), ("days_in_stage", ">", days)])
                )
                self.assertTrue(
                    self.Lead.search([("id", "=", lead.id), ("days_in_stage", ">=", days)])
                )

    def test_days_in_stage_agree_with_the_status_bar(self):
        """crm's status bar counts a stage's time from the deal's tracking (from its
        creation for the first stage); the card's days in stage count the same visit."""
        created = fields.Datetime.now().replace(microsecond=0) - timedelta(days=8, hours=2)
        # Data files loaded at install may date a creation back; the stage clock with it.
        with patch.object(self.registry, "ready", False):
            lead = self.Lead.create(
                {
                    "name": "Dated back",
                    "type": "opportunity",
                    "stage_id": self.stage_negotiation.id,
                    "create_date": created,
                }
            )
        self.assertEqual(lead.create_date, created)
        self.assertEqual(lead.date_last_stage_update, created)
        self.env.flush_all()
        self.env.cr.precommit.run()
        status_bar_days = lead.duration_tracking[str(self.stage_negotiation.id)] // 86400
        self.assertEqual(lead.days_in_stage, 8)
        self.assertEqual(lead.days_in_stage, status_bar_days)
        lead.stage_id = self.stage_proposal
        self.env.flush_all()
        self.env.cr.precommit.run()  # crm's tracking of the stage is written at commit
        lead.invalidate_recordset(["duration_tracking", "days_in_stage"])
        self.assertEqual(lead.duration_tracking[str(self.stage_proposal.id)] // 86400, 0)
        self.assertEqual(lead.days_in_stage, 0)

    def test_demo_leads_stage_clock_starts_at_their_creation(self):
        """crm's demo leads are dated back while their stage clock starts at install: the
        demo data aligns the clocks of the leads that never changed stage."""
        never_moved, moved = self.Lead.create(
            [
                {"name": "Never moved", "type": "opportunity", "stage_id": self.stage_new.id},
                {"name": "Moved", "type": "opportunity", "stage_id": self.stage_new.id},
            ]
        )
        self.env.flush_all()
        self.env.cr.precommit.run()
        moved.stage_id = self.stage_qualified
        self.env.flush_all()
        self.env.cr.precommit.run()  # crm's tracking of the stage is written at commit
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lead SET create_date = %s WHERE id IN %s",
                fields.Datetime.now() - timedelta(days=5, hours=1),
                (never_moved.id, moved.id),
            )
        )
        moved_clock = moved.date_last_stage_update
        moved_update = moved.write_date
        self.Lead._align_dates_with_creation()
        (never_moved | moved).invalidate_recordset(["create_date"])
        self.assertEqual(never_moved.days_in_stage, 5)
        self.assertEqual(never_moved.write_date, never_moved.create_date, "nobody changed it")
        self.assertEqual(moved.date_last_stage_update, moved_clock)
        self.assertEqual(moved.write_date, moved_update, "its stage was changed")

    def test_no_sla_when_closed_or_unlimited(self):
        won = self._opportunity(stage=self.stage_won)
        lost = self._opportunity(stage=self.stage_negotiation)
        lost.action_set_lost()
        self._set_dates(lost, entered=T0)
        self.stage_qualified.expected_days_max = 0
        unlimited = self._opportunity(stage=self.stage_qualified)
        with freeze_time(T0 + timedelta(days=60)):
            for lead in (won, lost, unlimited):
                self.assertFalse(lead.sla_state)
            found = self.Lead.with_context(active_test=False).search(
                [("id", "in", (won | lost | unlimited).ids), ("sla_state", "!=", False)]
            )
            self.assertFalse(found)
            self.assertEqual(
                self.Lead.with_context(active_test=False).search(
                    [("id", "in", (won | lost | unlimited).ids), ("sla_state", "=", False)]
                ),
                won | lost | unlimited,
            )

    def test_days_do_not_depend_on_the_reader_time_zone(self):
        """Days are 24-hour periods: a user in Kiribati (UTC+14) and one in Alaska (UTC−10)
        read the same day count, and 23 hours after entering a stage is still day 0."""
        lead = self._opportunity(stage=self.stage_negotiation, entered=T0)
        self.user_salesman_own.tz = "Pacific/Kiritimati"
        self.user_salesman_all.tz = "America/Adak"
        lead.user_id = False  # both salespeople may read it
        self._set_dates(lead, updated=T0)
        with freeze_time(T0 + timedelta(hours=23)):
            for user in (self.user_salesman_own, self.user_salesman_all):
                self.assertEqual(lead.with_user(user).days_in_stage, 0)
        with freeze_time(T0 + timedelta(days=22, hours=1)):
            for user in (self.user_salesman_own, self.user_salesman_all):
                lead.invalidate_recordset()
                self.assertEqual(lead.with_user(user).days_in_stage, 22)
                self.assertEqual(lead.with_user(user).sla_state, "overdue")

    def test_stage_clock_of_leads_already_in_the_stage_is_kept(self):
        """crm restarts the clock of every lead written when one changes stage; the module
        keeps it for the leads that were already there."""
        moving = self._opportunity(stage=self.stage_qualified)
        staying = self._opportunity(stage=self.stage_proposal)
        (moving | staying).write({"stage_id": self.stage_proposal.id})
        self.assertEqual(staying.date_last_stage_update, T0)
        self.assertGreater(moving.date_last_stage_update, T0)


@tagged("stage_clock", "post_install", "-at_install")
class TestStaleDeals(StaleDealsCommon):
    def test_stale_after_three_days_without_news(self):
        lead = self._opportunity()
        for elapsed, stale in (
            (timedelta(days=3, hours=23), False),
            (timedelta(days=4), True),
        ):
            with self.subTest(elapsed=elapsed), freeze_time(T0 + elapsed):
                lead.invalidate_recordset(["is_stale"])
                self.assertEqual(lead.is_stale, stale)
                found = self.Lead.search([("id", "=", lead.id), ("is_stale", "=", True)])
                self.assertEqual(bool(found), stale)
                found = self.Lead.search([("id", "=", lead.id), ("is_stale", "=", False)])
                self.assertEqual(bool(found), not stale)

    def test_news_and_plans_keep_a_deal_fresh(self):
        planned, noted, logged, closed = (self._opportunity() for _i in range(4))
        with freeze_time(T0 + timedelta(days=2)):
            planned.activity_schedule("mail.mail_activity_data_todo", user_id=self.env.uid)
            noted.message_post(body="Called, they are thinking", message_type="comment")
            # A system notification (tracking, log) is not news from anyone.
            logged._message_log(body="Score recomputed")
        closed.action_set_lost()
        self._set_dates(planned | noted | logged | closed, updated=T0)
        with freeze_time(T0 + timedelta(days=4)):
            self.assertEqual((planned | noted | logged | closed).filtered("is_stale"), logged)
        with freeze_time(T0 + timedelta(days=6)):
            (planned | noted | logged | closed).invalidate_recordset(["is_stale"])
            # The note is 4 days old now; the planned activity still counts.
            self.assertEqual(
                (planned | noted | logged | closed).filtered("is_stale"), noted | logged
            )

    def test_team_and_company_delays(self):
        self.sales_team.stale_after_days = 7
        team_lead = self._opportunity()
        company_2_team = self.env["crm.team"].create(
            {"name": "Team C2", "company_id": self.company_2.id}
        )
        self.company_2.pipeline_stale_after_days = 5
        c2_lead = self._opportunity(
            team_id=company_2_team.id, user_id=self.user_company_2.id, company_id=self.company_2.id
        )
        expectations = {4: [], 6: [c2_lead], 8: [team_lead, c2_lead]}
        for days, stale in expectations.items():
            with self.subTest(days=days), freeze_time(T0 + timedelta(days=days)):
                (team_lead | c2_lead).invalidate_recordset(["is_stale"])
                self.assertEqual(
                    (team_lead | c2_lead).filtered("is_stale"),
                    self.Lead.browse([lead.id for lead in stale]),
                )

    def test_delays_are_validated(self):
        with self.assertRaises(ValidationError):
            self.sales_team.stale_after_days = -1
        with self.assertRaises(ValidationError):
            self.company_main.pipeline_stale_after_days = 0


@tagged("stage_clock", "post_install", "-at_install")
class TestStaleFollowupCron(StaleDealsCommon):
    def test_followup_once_for_the_salesperson(self):
        stale = self._opportunity()
        fresh = self._opportunity(updated=T0 + timedelta(days=2))
        won = self._opportunity(stage=self.stage_won)
        with freeze_time(T0 + timedelta(days=4)):
            handled = self._run_until_done("_cron_stale_followups")
            self.assertIn(stale, handled)
            self.assertNotIn(fresh | won, handled)
            activity = self._followups(stale)
            self.assertEqual(len(activity), 1)
            self.assertEqual(activity.user_id, self.user_salesman_own)
            self.assertEqual(activity.activity_type_id, self.followup_type)
            self.assertEqual(activity.date_deadline, (T0 + timedelta(days=4)).date())
            self.assertEqual(stale.date_stale, T0 + timedelta(days=4))
            self.assertFalse(self._followups(fresh | won))
            # Stale no more: it has a plan. A second run creates nothing.
            self.assertFalse(stale.is_stale)
            self.assertFalse(self._run_until_done("_cron_stale_followups") & stale)
            self.assertEqual(len(self._followups(stale)), 1)
            # The job write_date untouched: the cron's work is not news on the deal.
            self.assertEqual(stale.write_date, T0)

    def test_followup_again_after_the_next_quiet_spell(self):
        lead = self._opportunity()
        with freeze_time(T0 + timedelta(days=4)):
            self.Lead._cron_stale_followups()
            self.assertFalse(self.Lead._cron_stale_followups() & lead)
        with freeze_time(T0 + timedelta(days=4, hours=1)):
            self._followups(lead).with_user(self.user_salesman_own).action_feedback("Called")
            lead.invalidate_recordset(["is_stale"])
            self.assertFalse(lead.is_stale)
        with freeze_time(T0 + timedelta(days=6)):
            self.assertFalse(self.Lead._cron_stale_followups() & lead, "news two days ago")
            self.assertFalse(self._followups(lead))
        with freeze_time(T0 + timedelta(days=8, hours=2)):
            self.assertTrue(self.Lead._cron_stale_followups() & lead, "a new quiet spell")
            self.assertEqual(len(self._followups(lead)), 1)
            self.assertEqual(lead.date_stale, T0 + timedelta(days=8, hours=2))
            self.assertFalse(self.Lead._cron_stale_followups() & lead)

    def test_cancelled_followup_is_not_planned_again_in_the_same_quiet_spell(self):
        lead = self._opportunity()
        with freeze_time(T0 + timedelta(days=4)):
            self.Lead._cron_stale_followups()
            self._followups(lead).unlink()
            self.assertTrue(lead.is_stale)
            self.assertFalse(self.Lead._cron_stale_followups() & lead)
        self.assertFalse(self._followups(lead))

    def test_configured_activity_type(self):
        call = self.env["mail.activity.type"].create(
            {"name": "Call the customer", "res_model": "crm.lead", "summary": "Call them"}
        )
        self.company_main.pipeline_followup_activity_type_id = call
        lead = self._opportunity()
        with freeze_time(T0 + timedelta(days=4)):
            self.Lead._cron_stale_followups()
        self.assertEqual(self._followups(lead).activity_type_id, call)
        self.assertEqual(self._followups(lead).summary, "Call them")

    def test_only_users_who_may_see_the_deal_are_told(self):
        """No salesperson: the team leader. A leader who cannot read the deal (an
        own-documents salesperson, deal owned by someone else) gets nothing."""
        departed = self.user_salesman_all.copy({"login": "departed_salesman"})
        unassigned = self._opportunity(user_id=False)
        orphan = self._opportunity(user_id=departed.id)
        departed.active = False
        self.sales_team.user_id = self.user_salesman_own
        with freeze_time(T0 + timedelta(days=4)):
            handled = self.Lead._cron_stale_followups()
        self.assertEqual(handled & (unassigned | orphan), unassigned | orphan, "both marked")
        self.assertEqual(self._followups(unassigned).user_id, self.user_salesman_own)
        self.assertFalse(self._followups(orphan))
        # A leader who may read every deal gets it.
        self.sales_team.user_id = self.user_sales_manager
        orphan.date_stale = False
        self._set_dates(orphan, updated=T0)
        with freeze_time(T0 + timedelta(days=4)):
            self.Lead._cron_stale_followups()
        self.assertEqual(self._followups(orphan).user_id, self.user_sales_manager)

    def test_multi_company(self):
        team_c2 = self.env["crm.team"].create({"name": "Team C2", "company_id": self.company_2.id})
        lead_c2 = self._opportunity(
            team_id=team_c2.id, user_id=self.user_company_2.id, company_id=self.company_2.id
        )
        # A salesperson who no longer works for company 2, on a company 2 deal: not told.
        self.user_salesman_all.company_ids |= self.company_2
        lead_c2_foreign = self._opportunity(
            team_id=team_c2.id, user_id=self.user_salesman_all.id, company_id=self.company_2.id
        )
        self.user_salesman_all.company_ids -= self.company_2
        with freeze_time(T0 + timedelta(days=4)):
            self.Lead._cron_stale_followups()
        self.assertEqual(self._followups(lead_c2).user_id, self.user_company_2)
        self.assertFalse(self._followups(lead_c2_foreign))

    def test_batches_and_a_crash_mid_run(self):
        leads = self.Lead.concat(*(self._opportunity() for _i in range(5)))
        original = CrmLead._schedule_stale_followups
        calls = []

        def crash_on_second_batch(records):
            calls.append(records)
            if len(calls) == 2:
                raise RuntimeError("worker killed")
            return original(records)

        with freeze_time(T0 + timedelta(days=4)):
            with patch.object(CrmLead, "_schedule_stale_followups", crash_on_second_batch):
                first = self.Lead._cron_stale_followups(batch_size=2)
                self.assertEqual(len(first), 2)
                # ir.cron runs each call in its own transaction: a crash rolls back its
                # batch only.
                with self.assertRaises(RuntimeError), self.env.cr.savepoint():
                    self.Lead._cron_stale_followups(batch_size=2)
            self.env.invalidate_all()
            self.assertEqual(len(self._followups(leads)), 2)
            self._run_until_done("_cron_stale_followups", batch_size=2)
        activities = self._followups(leads)
        self.assertEqual(len(activities), 5)
        self.assertEqual(set(activities.mapped("res_id")), set(leads.ids))

    @mute_logger("odoo.addons.crm_pipeline_optimizer.models.crm_lead_stage_clock")
    def test_query_count_does_not_grow_with_the_batch(self):
        def queries_for(count):
            leads = self.Lead.concat(*(self._opportunity() for _i in range(count)))
            with freeze_time(T0 + timedelta(days=4)):
                self.env.invalidate_all()
                before = self.env.cr.sql_log_count
                self.Lead._cron_stale_followups()
                spent = self.env.cr.sql_log_count - before
            self.assertEqual(len(self._followups(leads)), count)
            return spent

        queries_for(2)  # warms the caches
        small, large = queries_for(3), queries_for(15)
        self.assertEqual(small, large, "queries per batch must not depend on its size")
        self.assertLessEqual(large, 40)


@tagged("stage_clock", "post_install", "-at_install")
class TestEscalationCron(StaleDealsCommon):
    def _negotiation(self, **values):
        lead = self._opportunity(stage=self.stage_negotiation, **values)
        # A planned activity: not stale, so only the escalation acts here.
        lead.activity_schedule("mail.mail_activity_data_todo", user_id=self.user_salesman_own.id)
        return lead

    def test_escalate_once_per_stage_visit(self):
        lead = self._negotiation()
        self.assertEqual(lead.priority, "0")
        with freeze_time(T0 + timedelta(days=21, hours=23)):
            self.assertFalse(self.Lead._cron_escalate_overdue() & lead, "day 21 is on time")
        with freeze_time(T0 + timedelta(days=22)):
            self.assertTrue(self.Lead._cron_escalate_overdue() & lead)
            self.assertTrue(lead.is_escalated)
            self.assertEqual(lead.priority, "1")
            review = self._followups(lead).filtered(lambda a: a.activity_type_id == self.stuck_type)
            self.assertEqual(review.user_id, self.user_sales_manager)
            self.assertIn("22 days in Negotiation", review.summary)
            message = lead.message_ids[0]
            self.assertIn("Escalated: 22 days in Negotiation, expected at most 21", message.body)
            self.assertIn(self.user_sales_manager.name, message.body)
            digest = self.env["mail.message"].search(
                [("partner_ids", "in", self.user_sales_manager.partner_id.ids)],
                order="id desc",
                limit=1,
            )
            self.assertEqual(digest.subject, "Deals stuck in their stage: 1")
            self.assertIn(lead.name, digest.body)
        with freeze_time(T0 + timedelta(days=40)):
            self.assertFalse(self.Lead._cron_escalate_overdue() & lead, "once per visit")
            self.assertEqual(lead.priority, "1")
            self.assertEqual(
                len(
                    self._followups(lead).filtered(lambda a: a.activity_type_id == self.stuck_type)
                ),
                1,
            )
            # A new stage visit: the extra star goes, the clock restarts.
            lead.stage_id = self.stage_proposal
            self.assertFalse(lead.is_escalated)
            self.assertEqual(lead.priority, "0")

    def test_escalation_keeps_following_the_score(self):
        """The extra star stacks on the score's stars and follows them."""
        lead = self._negotiation(is_budget_confirmed=True)  # 30 points: one star
        self.assertEqual(lead.priority, "1")
        with freeze_time(T0 + timedelta(days=22)):
            self.Lead._cron_escalate_overdue()
        self.assertEqual(lead.priority, "2")
        lead.has_decision_maker = True  # 55 points: two stars, plus one
        self.assertEqual(lead.priority, "3")
        lead.has_decision_maker = False
        self.Lead._update_scores_where(SQL("crm_lead.id = %s", lead.id), [("id", "=", lead.id)])
        self.assertEqual(lead.priority, "2")

    def test_never_above_three_stars(self):
        lead = self._negotiation(priority="3")
        with freeze_time(T0 + timedelta(days=22)):
            self.Lead._cron_escalate_overdue()
        self.assertEqual(lead.priority, "3")
        self.assertTrue(lead.is_escalated)

    def test_leader_who_cannot_see_the_deal_is_not_told(self):
        self.sales_team.user_id = self.user_salesman_own
        lead = self._negotiation(user_id=self.user_salesman_all.id)
        with freeze_time(T0 + timedelta(days=22)):
            self.Lead._cron_escalate_overdue()
        self.assertTrue(lead.is_escalated)
        self.assertFalse(
            self._followups(lead).filtered(lambda a: a.activity_type_id == self.stuck_type)
        )
        self.assertIn("no leader who can see this deal", lead.message_ids[0].body)

    def test_batches_and_a_crash_mid_run(self):
        leads = self.Lead.concat(*(self._negotiation() for _i in range(5)))
        original = CrmLead._notify_escalation
        calls = []

        def crash_on_second_batch(records, leaders):
            calls.append(records)
            if len(calls) == 2:
                raise RuntimeError("worker killed")
            return original(records, leaders)

        with freeze_time(T0 + timedelta(days=22)):
            with patch.object(CrmLead, "_notify_escalation", crash_on_second_batch):
                self.Lead._cron_escalate_overdue(batch_size=2)
                with self.assertRaises(RuntimeError), self.env.cr.savepoint():
                    self.Lead._cron_escalate_overdue(batch_size=2)
            self.env.invalidate_all()
            self.assertEqual(len(leads.filtered("is_escalated")), 2)
            self._run_until_done("_cron_escalate_overdue", batch_size=2)
        self.assertTrue(all(leads.mapped("is_escalated")))
        reviews = self._followups(leads).filtered(lambda a: a.activity_type_id == self.stuck_type)
        self.assertEqual(len(reviews), 5)
        self.assertEqual(
            self.env["mail.message"].search_count(
                [
                    ("model", "=", "crm.lead"),
                    ("res_id", "in", leads.ids),
                    ("body", "ilike", "Escalated"),
                ]
            ),
            5,
        )
