import statistics
from datetime import timedelta

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import fields
from odoo.tests import tagged
from odoo.tools import SQL

from .common import TIME_ZONES, PipelineOptimizerCommon


@tagged("stage_flow", "post_install", "-at_install")
class TestStageFlow(PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Lead = cls.env["crm.lead"]
        cls.Visit = cls.env["crm.lead.stage.visit"]

    def _deal(self, stage, user=None, **values):
        deal = self.Lead.create(
            {
                "name": "Flow deal",
                "type": "opportunity",
                "team_id": self.sales_team.id,
                "user_id": (user or self.user_salesman_own).id,
                "stage_id": stage.id,
                **values,
            }
        )
        self._commit()
        return deal

    def _commit(self):
        """What a transaction's end does: the tracking crm's history is made of."""
        self.env.flush_all()
        self.env.cr.precommit.run()

    def _move(self, deals, stage):
        deals.write({"stage_id": stage.id})
        self._commit()

    def _visits(self, deals):
        return sorted(
            (visit.lead_id.id, visit.stage_id.id, visit.outcome)
            for visit in self.Visit.search([("lead_id", "in", deals.ids)])
        )

    def test_each_move_ends_a_visit(self):
        deal = self._deal(self.stage_new)
        self._move(deal, self.stage_qualified)
        self._move(deal, self.stage_new)
        self._move(deal, self.stage_proposal)
        self._move(deal, self.stage_won)
        lost = self._deal(self.stage_qualified)
        lost.action_set_lost()
        self._commit()
        self.assertEqual(
            self._visits(deal | lost),
            sorted(
                [
                    (deal.id, self.stage_new.id, "forward"),
                    (deal.id, self.stage_qualified.id, "back"),
                    (deal.id, self.stage_new.id, "forward"),
                    (deal.id, self.stage_proposal.id, "won"),
                    (lost.id, self.stage_qualified.id, "lost"),
                ]
            ),
        )

    def test_kept_visits_equal_a_recount_from_the_history(self):
        deals = self.Lead.concat(*(self._deal(self.stage_new) for _index in range(4)))
        self._move(deals, self.stage_qualified)
        self._move(deals[:3], self.stage_proposal)
        self._move(deals[:1], self.stage_won)
        self._move(deals[1:2], self.stage_qualified)
        deals[2].action_set_lost()
        self._commit()
        kept = self._visits(deals)
        kept_days = {
            (visit.lead_id.id, visit.stage_id.id, visit.outcome): round(visit.days, 3)
            for visit in self.Visit.search([("lead_id", "in", deals.ids)])
        }
        self.Visit._rebuild_stage_visits()
        self.assertEqual(self._visits(deals), kept)
        recount_days = {
            (visit.lead_id.id, visit.stage_id.id, visit.outcome): round(visit.days, 3)
            for visit in self.Visit.search([("lead_id", "in", deals.ids)])
        }
        self.assertEqual(recount_days.keys(), kept_days.keys())

    def test_mass_move_is_one_insert(self):
        few = self.Lead.concat(*(self._deal(self.stage_new) for _index in range(3)))
        many = self.Lead.concat(*(self._deal(self.stage_new) for _index in range(30)))
        for deals in (few, many):
            deals.invalidate_recordset()
            with self.assertQueryCount(1):
                deals._end_stage_visits({"stage_id": self.stage_qualified.id})
        self.assertEqual(self.Visit.search_count([("lead_id", "in", many.ids)]), 30)

    def test_visit_keeps_who_held_the_deal_and_their_readers(self):
        deal = self._deal(self.stage_new)
        self._move(deal, self.stage_qualified)
        visit = self.Visit.search([("lead_id", "=", deal.id)])
        own = self.Visit.with_user(self.user_salesman_own)
        self.assertEqual(own.search([("lead_id", "=", deal.id)]), visit)
        deal.user_id = self.user_salesman_all
        self._move(deal, self.stage_proposal)
        later = self.Visit.search([("lead_id", "=", deal.id)]) - visit
        self.assertEqual(visit.user_id, self.user_salesman_own, "who held it in New")
        self.assertEqual(later.user_id, self.user_salesman_all)
        self.assertEqual(own.search([("lead_id", "=", deal.id)]), visit)
        self.assertEqual(
            self.Visit.with_user(self.user_salesman_all).search([("lead_id", "=", deal.id)]),
            visit | later,
            "an all-documents salesperson reads every visit",
        )
        self.assertFalse(
            self.Visit.with_user(self.user_company_2).search([("lead_id", "=", deal.id)]),
            "another company's",
        )

    def test_funnel_and_velocity_equal_the_visits(self):
        own, other = self.user_salesman_own, self.user_salesman_all
        deals = self.Lead.concat(
            *(self._deal(self.stage_new, user=own if index % 3 else other) for index in range(9))
        )
        self._move(deals[:7], self.stage_qualified)
        self._move(deals[:4], self.stage_proposal)
        self._move(deals[:1], self.stage_won)
        deals[4].action_set_lost()
        self._commit()
        # Spread the days: each visit of Qualified lasted as many days as its position.
        for position, visit in enumerate(
            self.Visit.search(
                [("lead_id", "in", deals.ids), ("stage_id", "=", self.stage_qualified.id)]
            )
        ):
            visit.days = position + 1
        for user in (self.user_salesman_own, self.user_sales_manager):
            with self.subTest(user=user.name):
                data = self.env["crm.pipeline.dashboard"].with_user(user).get_stage_flow_data()
                mine = (
                    deals
                    if user == self.user_sales_manager
                    else deals.filtered(lambda deal: deal.user_id == own)
                )
                visits = self.Visit.search([("lead_id", "in", mine.ids)])
                rows = {row["id"]: row for row in data["stages"]}
                qualified = rows[self.stage_qualified.id]
                of_qualified = visits.filtered(lambda v: v.stage_id == self.stage_qualified)
                current = mine.filtered(
                    lambda deal: deal.active and deal.stage_id == self.stage_qualified
                )
                self.assertEqual(qualified["entered"], len(of_qualified) + len(current))
                self.assertEqual(
                    qualified["forward"],
                    len(of_qualified.filtered(lambda v: v.outcome == "forward")),
                )
                self.assertEqual(
                    qualified["lost"], len(of_qualified.filtered(lambda v: v.outcome == "lost"))
                )
                self.assertEqual(qualified["current"], len(current))
                self.assertAlmostEqual(
                    qualified["average_days"], statistics.mean(of_qualified.mapped("days"))
                )
                self.assertAlmostEqual(
                    qualified["median_days"], statistics.median(of_qualified.mapped("days"))
                )
                self.assertEqual(
                    self.Lead.with_user(user).search_count(qualified["domain"]),
                    len(set(of_qualified.lead_id.filtered("active").ids) | set(current.ids)),
                )
                per_person = {
                    row["name"]: row
                    for row in data["by_salesperson"]
                    if row["stage"] == self.stage_qualified.name
                }
                for person in {visit.user_id for visit in of_qualified}:
                    days = of_qualified.filtered(lambda v, p=person: v.user_id == p).mapped("days")
                    self.assertAlmostEqual(
                        per_person[person.name]["average_days"], statistics.mean(days)
                    )
                if user == self.user_salesman_own:
                    self.assertNotIn(other.name, per_person, "a colleague's deals stay unseen")

    def test_funnel_counts_deals_moved_on_without_exit_criteria(self):
        met = self._deal(self.stage_qualified, is_budget_confirmed=True, has_decision_maker=True)
        missing = self._deal(self.stage_qualified, is_budget_confirmed=True)
        self._move(met | missing, self.stage_proposal)
        visits = self.Visit.search([("lead_id", "in", (met | missing).ids)])
        self.assertEqual(visits.filtered("is_without_exit_criteria").lead_id, missing)
        data = self.env["crm.pipeline.dashboard"].with_user(self.user_sales_manager)
        rows = {row["id"]: row for row in data.get_stage_flow_data()["stages"]}
        qualified = rows[self.stage_qualified.id]
        self.assertEqual((qualified["forward"], qualified["without_exit_criteria"]), (2, 1))


FLOW_EXAMPLES = 20

flow_step_strategy = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 3), st.integers(0, 2), st.integers(0, 1)),
    # The visit the move ends is then dated as `visit_dates` says.
    st.tuples(
        st.just("move"),
        st.integers(0, 20),
        st.integers(0, 4),
        st.integers(0, 4),
        st.integers(-14, 14),
        st.integers(0, 4),
        st.integers(-14, 14),
    ),
    st.tuples(st.just("lost"), st.integers(0, 20)),
    st.tuples(st.just("assign"), st.integers(0, 20), st.integers(0, 2)),
    st.tuples(
        st.just("visit_dates"),
        st.integers(0, 40),
        st.integers(0, 4),  # entered: months back
        st.integers(-14, 14),  # and hours from the month's first midnight, UTC
        st.integers(0, 4),  # left: months back
        st.integers(-14, 14),  # and hours
    ),
    st.tuples(st.just("stage_date"), st.integers(0, 20), st.integers(0, 4), st.integers(-14, 14)),
    st.tuples(st.just("unlink"), st.integers(0, 20)),
)


@tagged("stage_flow", "post_install", "-at_install")
class TestStageFlowFigures(PipelineOptimizerCommon):
    """The stage flow read from the figures the database keeps equals the stage flow read
    from the visits and deals, for every role and time zone, whatever happened."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["base.automation"].search([]).active = False
        cls.salespeople = [cls.user_salesman_own, cls.user_salesman_all, cls.user_sales_manager]
        cls.stages = [
            cls.stage_new,
            cls.stage_qualified,
            cls.stage_proposal,
            cls.stage_negotiation,
            cls.stage_won,
        ]
        cls.team_2 = cls.env["crm.team"].create({"name": "Flow Team 2"})
        cls.teams = [cls.sales_team, cls.team_2, cls.env["crm.team"]]
        cls.readers = [cls.user_sales_manager, cls.user_salesman_all, cls.user_salesman_own]

    def _moment(self, months_back, hours):
        first = fields.Datetime.to_datetime(fields.Date.today().replace(day=1))
        return first - relativedelta(months=months_back) + timedelta(hours=hours)

    def _apply(self, step, deals):
        Lead = self.env["crm.lead"]
        kind, *args = step
        if kind == "create":
            stage, user, team = args
            deal = Lead.create(
                {
                    "name": f"Flow {len(deals)}",
                    "type": "opportunity",
                    "stage_id": self.stages[stage].id,
                    "user_id": self.salespeople[user].id,
                    "team_id": self.teams[team].id,
                }
            )
            return [*deals, deal]
        live = [deal for deal in deals if deal.exists()]
        if kind == "visit_dates":
            visits = self.env["crm.lead.stage.visit"].search(
                [("lead_id", "in", [deal.id for deal in deals])]
            )
            if visits:
                self._date_visit(visits[args[0] % len(visits)], *args[1:])
            return deals
        if not live:
            return deals
        deal = live[args[0] % len(live)]
        if kind == "move":
            deal.stage_id = self.stages[args[1]]
            ended = self.env["crm.lead.stage.visit"].search([("lead_id", "=", deal.id)], limit=1)
            if ended:
                self._date_visit(ended, *args[2:])
        elif kind == "lost":
            deal.action_set_lost()
        elif kind == "assign":
            deal.user_id = self.salespeople[args[1]]
        elif kind == "stage_date":
            self.env.flush_all()
            self.env.cr.execute(
                SQL(
                    "UPDATE crm_lead SET date_last_stage_update = %s WHERE id = %s",
                    self._moment(args[1], args[2]),
                    deal.id,
                )
            )
            self.env.invalidate_all()
        elif kind == "unlink":
            deal.unlink()
        return deals

    def _date_visit(self, visit, entered_months_back, entered_hours, left_months_back, left_hours):
        """Behind the ORM, as the rebuild from crm's history does."""
        entered = self._moment(entered_months_back, entered_hours)
        left = max(entered, self._moment(left_months_back, left_hours))
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """UPDATE crm_lead_stage_visit
                      SET date_entered = %s, date_left = %s, days = %s WHERE id = %s""",
                entered,
                left,
                (left - entered).total_seconds() / 86400,
                visit.id,
            )
        )
        self.env.invalidate_all()

    @staticmethod
    def _rounded(value):
        if isinstance(value, float):
            return round(value, 6)
        if isinstance(value, dict):
            return {key: TestStageFlowFigures._rounded(item) for key, item in value.items()}
        if isinstance(value, list):
            return [TestStageFlowFigures._rounded(item) for item in value]
        return value

    def _stage_flow(self, reader, tz, period):
        reader.tz = tz
        Dashboard = self.env["crm.pipeline.dashboard"].with_user(reader).with_context(tz=None)
        return self._rounded(Dashboard.get_stage_flow_data(period))

    @settings(
        max_examples=FLOW_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=st.lists(flow_step_strategy, min_size=3, max_size=16))
    def test_kept_stage_flow_equals_the_visits(self, steps):
        with self.env.cr.savepoint(flush=True) as savepoint:
            deals = []
            for step in steps:
                deals = self._apply(step, deals)
            self.env.flush_all()
            for reader in self.readers:
                for tz in TIME_ZONES:
                    for period in ("month", "quarter"):
                        kept = self._stage_flow(reader, tz, period)
                        with self._reading_the_records():
                            live = self._stage_flow(reader, tz, period)
                        self.assertEqual(kept, live, f"{reader.login}, {tz}, {period}")
            self._assert_kept_figures_equal_a_recount()
            savepoint.rollback()
        self.env.invalidate_all()
