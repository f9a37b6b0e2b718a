from contextlib import contextmanager
from datetime import datetime
from unittest.mock import patch

from dateutil.relativedelta import relativedelta

from odoo import fields
from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.tests import TransactionCase
from odoo.tools import SQL

# The time zones the kept figures are read in: UTC, whole hours with summer time, and half
# hours ahead (the periods' first hours fall in the month before, in UTC).
TIME_ZONES = ("UTC", "America/New_York", "Asia/Tehran")


class PipelineOptimizerCommon(TransactionCase):
    """The world every test of the module starts from: one user per sales role, a second
    company with its own salesperson, a sales team and the seeded B2B stages."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_main = cls.env.company
        cls.company_2 = cls.env["res.company"].create({"name": "Pipeline Company 2"})
        cls.user_salesman_own = mail_new_test_user(
            cls.env,
            login="pipeline_salesman_own",
            name="Sam Own Documents",
            email="sam.own@example.com",
            groups="sales_team.group_sale_salesman",
        )
        cls.user_salesman_all = mail_new_test_user(
            cls.env,
            login="pipeline_salesman_all",
            name="Alex All Documents",
            email="alex.all@example.com",
            groups="sales_team.group_sale_salesman_all_leads",
        )
        cls.user_sales_manager = mail_new_test_user(
            cls.env,
            login="pipeline_sales_manager",
            name="Morgan Sales Manager",
            email="morgan.manager@example.com",
            groups="sales_team.group_sale_manager",
        )
        cls.user_company_2 = mail_new_test_user(
            cls.env,
            login="pipeline_salesman_c2",
            name="Casey Company Two",
            email="casey.c2@example.com",
            groups="sales_team.group_sale_salesman_all_leads",
            company_id=cls.company_2.id,
            company_ids=[(6, 0, cls.company_2.ids)],
        )
        cls.sales_team = cls.env["crm.team"].create(
            {
                "name": "Pipeline Team",
                "user_id": cls.user_sales_manager.id,
                "member_ids": [(6, 0, (cls.user_salesman_own | cls.user_salesman_all).ids)],
            }
        )
        cls.stage_new = cls.env.ref("crm.stage_lead1")
        cls.stage_qualified = cls.env.ref("crm.stage_lead2")
        cls.stage_proposal = cls.env.ref("crm.stage_lead3")
        cls.stage_negotiation = cls.env.ref("crm_pipeline_optimizer.stage_negotiation")
        cls.stage_won = cls.env.ref("crm.stage_lead4")

    @classmethod
    def _backdate(cls, leads, stage_days=0, idle_days=0):
        """Moves leads back in time behind the ORM, which would stamp write_date with now:
        they entered their stage `stage_days` ago and were last updated `idle_days` ago."""
        cls.env.flush_all()
        cls.env.cr.execute(
            SQL(
                """UPDATE crm_lead
                      SET date_last_stage_update = now() - make_interval(days => %s),
                          write_date = now() - make_interval(days => %s)
                    WHERE id IN %s""",
                stage_days,
                idle_days,
                tuple(leads.ids),
            )
        )
        leads.invalidate_recordset()

    @contextmanager
    def _reading_the_records(self):
        """The dashboard reads the records instead of the kept figures, as for a reader
        whose record rules the figures cannot apply."""
        with patch.object(
            type(self.env["crm.pipeline.figure"]), "_reader_rules", lambda self: None
        ):
            yield

    def _assert_kept_figures_equal_a_recount(self):
        """What the triggers kept is what counting again finds, and folding the deltas
        changes no figure."""
        Figure = self.env["crm.pipeline.figure"]
        kept = Figure._totals()
        Figure._cron_fold_figures()
        self.assertEqual(Figure._totals(), kept)
        Figure._rebuild_figures()
        self.assertEqual(Figure._totals(), kept)


# Every date of these tests hangs from this instant, long before the test database was
# made, so that the database's own opportunities are never stale nor overdue here.
T0 = datetime(2024, 1, 8, 10, 0, 0)


class StaleDealsCommon(PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Lead = cls.env["crm.lead"]
        cls.followup_type = cls.env.ref("crm_pipeline_optimizer.mail_activity_type_stale_followup")
        cls.stuck_type = cls.env.ref("crm_pipeline_optimizer.mail_activity_type_stuck_deal")
        cls.company_main.pipeline_stale_after_days = 3
        # Automation rules are tested apart; here they would add messages of their own.
        cls.automations_active_at_install = cls.env["base.automation"].search([])
        cls.automations_active_at_install.active = False

    def _opportunity(self, stage=None, entered=T0, updated=T0, **values):
        lead = self.Lead.create(
            {
                "name": "Quiet deal",
                "type": "opportunity",
                "team_id": self.sales_team.id,
                "user_id": self.user_salesman_own.id,
                "stage_id": (stage or self.stage_qualified).id,
                "partner_name": "Quiet Customer",
                **values,
            }
        )
        lead.activity_ids.unlink()
        self._set_dates(lead, entered=entered, updated=updated)
        return lead

    def _set_dates(self, leads, entered=None, updated=None):
        """Back-dates leads the way time would have: behind the ORM, which would stamp
        write_date with now."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead
                      SET date_last_stage_update = COALESCE(%s, date_last_stage_update),
                          write_date = COALESCE(%s, write_date)
                    WHERE id IN %s""",
                entered,
                updated,
                tuple(leads.ids),
            )
        )
        leads.invalidate_recordset()

    def _followups(self, leads):
        return self.env["mail.activity"].search(
            [("res_model", "=", "crm.lead"), ("res_id", "in", leads.ids)]
        )

    def _run_until_done(self, method, batch_size=1000):
        """Calls a batched cron method the way ir.cron does: again while some are left."""
        handled = self.Lead
        for _call in range(100):
            batch = getattr(self.Lead, method)(batch_size=batch_size)
            handled |= batch
            if len(batch) < batch_size:
                return handled
        raise AssertionError(f"{method} never finished")


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


class PipelineDashboardCommon(PipelineOptimizerCommon):
    """A team with a known month: leads created, converted, won and lost, open deals,
    activities done, a revenue target."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["base.automation"].search([]).active = False
        for user in (
            cls.env.user,
            cls.user_salesman_own,
            cls.user_salesman_all,
            cls.user_sales_manager,
        ):
            user.tz = "UTC"
        cls.Dashboard = cls.env["crm.pipeline.dashboard"]
        cls.today = fields.Date.today()
        cls.lost_reason = cls.env["crm.lost.reason"].create({"name": "Too expensive"})
        Lead = cls.env["crm.lead"]

        def lead(name, user, **values):
            return Lead.create(
                {"name": name, "team_id": cls.sales_team.id, "user_id": user.id, **values}
            )

        own, other = cls.user_salesman_own, cls.user_salesman_all
        cls.leads_only = lead("Lead A", own, type="lead") | lead("Lead B", other, type="lead")
        cls.won = lead("Won 1", own, type="opportunity", expected_revenue=10000) | lead(
            "Won 2", other, type="opportunity", expected_revenue=30000
        )
        cls.lost = (
            lead("Lost 1", own, type="opportunity", expected_revenue=5000)
            | lead("Lost 2", other, type="opportunity", expected_revenue=7000)
            | lead("Lost 3", other, type="opportunity", expected_revenue=9000)
        )
        cls.open = lead(
            "Open 1",
            own,
            type="opportunity",
            expected_revenue=40000,
            stage_id=cls.stage_proposal.id,
        ) | lead(
            "Open 2",
            other,
            type="opportunity",
            expected_revenue=20000,
            stage_id=cls.stage_negotiation.id,
        )
        for deal in cls.won:
            deal.activity_schedule("mail.mail_activity_data_call", user_id=deal.user_id.id)
            deal.activity_ids.with_user(deal.user_id).action_feedback("Called")
        cls.won.action_set_won()
        cls.lost.action_set_lost(lost_reason_id=cls.lost_reason.id)
        cls.target = cls.env["crm.team.revenue.target"].create(
            {
                "team_id": cls.sales_team.id,
                "date_from": cls.today.replace(day=1),
                "date_to": cls.today.replace(day=1) + relativedelta(months=1, days=-1),
                "amount": 20000,
            }
        )
        cls.team_leads = cls.leads_only | cls.won | cls.lost | cls.open

    def _expected(self, leads, target):
        """Each KPI computed again from the records, one by one, the naive way."""
        start = fields.Datetime.to_datetime(self.today.replace(day=1))
        end = start + relativedelta(months=1)
        leads = leads.with_context(active_test=False)
        created = leads.filtered(lambda lead: start <= lead.create_date < end)
        won = leads.filtered(
            lambda lead: lead.active and lead.stage_id.is_won and start <= lead.date_closed < end
        )
        lost = leads.filtered(
            lambda lead: (
                not lead.active
                and lead.probability == 0
                and lead.date_closed
                and start <= lead.date_closed < end
            )
        )
        open_deals = leads.filtered(
            lambda lead: lead.active and lead.type == "opportunity" and not lead.stage_id.is_won
        )
        done = self.env["mail.message"].search_count(
            [
                ("model", "=", "crm.lead"),
                ("res_id", "in", won.ids),
                ("mail_activity_type_id", "!=", False),
            ]
        )
        converted = created.filtered(lambda lead: lead.type == "opportunity")
        open_amount = sum(open_deals.mapped("expected_revenue"))
        return {
            "conversion_rate": round(100 * len(converted) / len(created), 2),
            "win_rate": round(100 * len(won) / (len(won) + len(lost)), 2),
            "deal_size": round(sum(won.mapped("expected_revenue")) / len(won), 2),
            "cycle_days": round(sum(won.mapped("day_close")) / len(won), 1),
            "coverage": round(open_amount / target, 2) if target else None,
            "activity_to_close": round(done / len(won), 2),
            "won_count": len(won),
            "lost_count": len(lost),
            "open_count": len(open_deals),
            "open_amount": open_amount,
            "created_count": len(created),
        }
