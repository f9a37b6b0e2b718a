import json
import logging
from datetime import timedelta

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import fields
from odoo.tests import tagged
from odoo.tools import SQL

from .common import TIME_ZONES, PipelineOptimizerCommon

_logger = logging.getLogger(__name__)

FIGURE_EXAMPLES = 25

# What happens to the leads: each step names a lead by its position among those made.
step_strategy = st.one_of(
    st.tuples(
        st.just("create"),
        st.sampled_from(["lead", "opportunity"]),
        st.integers(0, 3),  # salesperson (3: none)
        st.integers(0, 2),  # team (2: none)
        st.integers(0, 2),  # source (2: none)
        st.one_of(st.none(), st.integers(0, 50000)),  # expected revenue
        st.integers(0, 13),  # months back
        st.integers(-14, 14),  # hours from the month's first midnight, UTC
    ),
    st.tuples(st.just("won"), st.integers(0, 20)),
    st.tuples(st.just("lost"), st.integers(0, 20), st.integers(0, 1)),
    st.tuples(st.just("restore"), st.integers(0, 20)),
    st.tuples(st.just("stage"), st.integers(0, 20), st.integers(0, 2)),
    st.tuples(st.just("convert"), st.integers(0, 20)),
    st.tuples(st.just("assign"), st.integers(0, 20), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("revenue"), st.integers(0, 20), st.integers(0, 50000)),
    st.tuples(st.just("closed"), st.integers(0, 20), st.integers(0, 13), st.integers(-14, 14)),
    st.tuples(st.just("activity"), st.integers(0, 20), st.integers(-40, 40), st.integers(0, 2)),
    st.tuples(st.just("done"), st.integers(0, 20), st.integers(0, 1), st.integers(-14, 14)),
    st.tuples(st.just("merge"), st.integers(0, 20), st.integers(0, 20)),
    st.tuples(st.just("unlink"), st.integers(0, 20)),
)


@tagged("dashboard", "post_install", "-at_install")
class TestPipelineFigures(PipelineOptimizerCommon):
    """The dashboard read from the figures the database keeps equals the dashboard read
    from the leads, for every role and time zone, whatever happened to the leads."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["base.automation"].search([]).active = False
        cls.sales_team.user_id = cls.user_salesman_all
        cls.team_2 = cls.env["crm.team"].create(
            {"name": "Figures Team 2", "member_ids": [(6, 0, cls.user_salesman_own.ids)]}
        )
        cls.salespeople = [
            cls.user_salesman_own,
            cls.user_salesman_all,
            cls.user_sales_manager,
            cls.env["res.users"],
        ]
        cls.teams = [cls.sales_team, cls.team_2, cls.env["crm.team"]]
        cls.sources = [
            *cls.env["utm.source"].create([{"name": "Figures Web"}, {"name": "Figures Fair"}]),
            cls.env["utm.source"],
        ]
        cls.reasons = cls.env["crm.lost.reason"].create(
            [{"name": "Figures Price"}, {"name": "Figures Timing"}]
        )
        cls.open_stages = [cls.stage_new, cls.stage_proposal, cls.stage_negotiation]
        cls.readers = [cls.user_sales_manager, cls.user_salesman_all, cls.user_salesman_own]
        cls.cases = 0

    @classmethod
    def tearDownClass(cls):
        _logger.info("randomized figures cases: %s", cls.cases)
        super().tearDownClass()

    # ------------------------------------------------------------------ steps
    def _month_moment(self, months_back, hours):
        """A UTC moment `hours` from the first midnight of the month `months_back` ago."""
        first = fields.Datetime.to_datetime(fields.Date.today().replace(day=1))
        month = first - relativedelta(months=months_back)
        return min(month + timedelta(hours=hours), fields.Datetime.now())

    def _set_columns(self, lead, **values):
        """Moves dates behind the ORM, as imports and crm's own SQL do."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "UPDATE crm_lead SET %s WHERE id = %s",
                SQL(", ").join(
                    SQL("%s = %s", SQL.identifier(name), value) for name, value in values.items()
                ),
                lead.id,
            )
        )
        self.env.invalidate_all()

    def _apply(self, step, leads):
        Lead = self.env["crm.lead"].with_context(active_test=False)
        kind, *args = step
        if kind == "create":
            lead_type, user, team, source, revenue, months_back, hours = args
            lead = Lead.create(
                {
                    "name": f"Figures {len(leads)}",
                    "type": lead_type,
                    "user_id": self.salespeople[user].id,
                    "team_id": self.teams[team].id,
                    "source_id": self.sources[source].id,
                    "expected_revenue": revenue,
                }
            )
            self._set_columns(lead, create_date=self._month_moment(months_back, hours))
            return [*leads, lead]
        live = [lead for lead in leads if lead.exists()]
        if not live:
            return leads
        lead = live[args[0] % len(live)]
        if kind == "won":
            lead.action_set_won()
        elif kind == "lost":
            lead.action_set_lost(lost_reason_id=self.reasons[args[1]].id)
        elif kind == "restore":
            lead.action_unarchive()
        elif kind == "stage":
            lead.stage_id = self.open_stages[args[1]]
        elif kind == "convert":
            lead.type = "opportunity"
        elif kind == "assign":
            lead.write({"user_id": self.salespeople[args[1]].id, "team_id": self.teams[args[2]].id})
        elif kind == "revenue":
            lead.expected_revenue = args[1]
        elif kind == "closed":
            moment = self._month_moment(args[1], args[2])
            self._set_columns(lead, date_closed=max(moment, lead.create_date))
        elif kind == "activity":
            lead.activity_schedule(
                "mail.mail_activity_data_todo",
                date_deadline=fields.Date.today() + timedelta(days=args[1]),
                user_id=self.salespeople[args[2]].id or self.env.uid,
            )
        elif kind == "done" and lead.activity_ids:
            message_id = lead.activity_ids[:1].action_feedback(feedback="Done")
            self.env.flush_all()
            self.env.cr.execute(
                SQL(
                    "UPDATE mail_message SET date = %s WHERE id = %s",
                    self._month_moment(args[1], args[2]),
                    message_id,
                )
            )
        elif kind == "merge":
            other = live[args[1] % len(live)]
            if other != lead:
                (lead | other)._merge_into(lead)
        elif kind == "unlink":
            lead.unlink()
        return leads

    # ------------------------------------------------------------------ comparison
    def _dashboard(self, reader, tz, period):
        reader.tz = tz
        data = (
            self.env["crm.pipeline.dashboard"]
            .with_user(reader)
            .with_context(tz=None)
            .get_dashboard_data(period)
        )
        charts = {
            name: sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)
            for name, rows in data["charts"].items()
        }
        return {"kpis": data["kpis"], "charts": charts, "target": data["target"]}

    def _assert_same_dashboards(self):
        for reader in self.readers:
            for tz in TIME_ZONES:
                for period in ("month", "year"):
                    kept = self._dashboard(reader, tz, period)
                    with self._reading_the_records():
                        live = self._dashboard(reader, tz, period)
                    self.assertEqual(kept, live, f"{reader.login}, {tz}, {period}")

    @settings(
        max_examples=FIGURE_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=st.lists(step_strategy, min_size=3, max_size=14))
    def test_kept_figures_equal_the_leads(self, steps):
        type(self).cases += 1
        with self.env.cr.savepoint(flush=True) as savepoint:
            leads = []
            for step in steps:
                leads = self._apply(step, leads)
            self.env.flush_all()
            self._assert_same_dashboards()
            self._assert_kept_figures_equal_a_recount()
            savepoint.rollback()
        self.env.invalidate_all()

    def test_readers_with_other_rules_read_the_leads(self):
        """A record rule on any other field of a lead (here a global one): the figures
        cannot apply it, the dashboard reads the leads."""
        Dashboard = self.env["crm.pipeline.dashboard"].with_user(self.user_salesman_all)
        self.env["crm.lead"].create(
            [
                {"name": name, "user_id": self.user_salesman_all.id, "team_id": self.sales_team.id}
                for name in ("Visible deal", "Hidden deal")
            ]
        )
        self.assertIsNotNone(Dashboard.env["crm.pipeline.figure"]._reader_rules())
        self.assertEqual(Dashboard.get_dashboard_data("month")["kpis"]["created_count"]["value"], 2)
        self.env["ir.rule"].create(
            {
                "name": "No hidden deals",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "domain_force": "[('name', 'not ilike', 'hidden')]",
            }
        )
        self.assertIsNone(Dashboard.env["crm.pipeline.figure"]._reader_rules())
        self.assertEqual(Dashboard.get_dashboard_data("month")["kpis"]["created_count"]["value"], 1)
