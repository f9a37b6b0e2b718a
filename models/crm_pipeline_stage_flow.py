from odoo import api, models
from odoo.tools import SQL

from ..rules import stage_flow


class CrmPipelineDashboard(models.AbstractModel):
    """Stage flow: the funnel of the deals that entered each stage in the period, and the
    days deals spend in each stage, per team and per salesperson."""

    _inherit = "crm.pipeline.dashboard"

    @api.model
    @api.readonly
    def get_stage_flow_data(self, period="month", team_id=None, user_id=None):
        self, scope, base, _teams = self._reader_scope(period, team_id, user_id)
        self._no_jit()
        start, end = self._dashboard_period(period).current
        stages = self.env["crm.stage"].search([("is_won", "=", False)])
        funnel, skipped = self._stage_funnel(base, start, end)
        velocity = self._stage_velocity(base, start, end)
        return {
            "scope": scope,
            "stages": [
                {
                    **self._stage_flow_row(
                        stage, funnel.get(stage.id, {}), velocity, base, start, end
                    ),
                    "without_exit_criteria": skipped.get(stage.id, 0),
                }
                for stage in stages
            ],
            "by_team": self._velocity_rows(velocity, "team_id", stages),
            "by_salesperson": self._velocity_rows(velocity, "user_id", stages),
        }

    @api.model
    @api.readonly
    def get_exit_criteria_data(self, period="month", team_id=None, user_id=None):
        """Per stage with exit checks, the open opportunities of the reader's scope missing
        one (today's, whatever the period): read apart from the dashboard's figures, as the
        checks' conditions are read on the deals themselves (their messages, activities)."""
        self, _scope, base, _teams = self._reader_scope(period, team_id, user_id)
        self._no_jit()
        Lead = self.env["crm.lead"]
        stage_ids = list(Lead._exit_checks_by_stage())
        if not stage_ids:
            return []
        missing_domain = [*self._open_domain(base), ("is_exit_ready", "=", False)]
        counts = dict(
            Lead._read_group(
                [*missing_domain, ("stage_id", "in", stage_ids)], ["stage_id"], ["__count"]
            )
        )
        return [
            {
                "stage_id": stage.id,
                "missing_count": counts.get(stage, 0),
                "domain": [*missing_domain, ("stage_id", "=", stage.id)],
            }
            for stage in self.env["crm.stage"].browse(stage_ids)
        ]

    def _period_domain(self, field, start, end):
        return self._between(field, start, end)

    def _stage_funnel(self, base, start, end):
        """({stage id: {outcome: deals}}, {stage id: deals moved on without its exit
        criteria}) of the visits that began in the period: those ended (moved on, back,
        won, lost) and those still there (`current`); from the kept figures, else from
        the visits and deals."""
        rules = self.env["crm.pipeline.figure"]._reader_rules()
        if rules is not None:
            return self.env["crm.pipeline.figure"]._stage_funnel(rules, base, start, end)
        funnel = {}
        ended = self.env["crm.lead.stage.visit"]._read_group(
            [*base, *self._period_domain("date_entered", start, end)],
            ["stage_id", "outcome"],
            ["__count"],
        )
        for stage, outcome, count in ended:
            funnel.setdefault(stage.id, {})[outcome] = count
        skipped = self.env["crm.lead.stage.visit"]._read_group(
            [
                *base,
                *self._period_domain("date_entered", start, end),
                ("is_without_exit_criteria", "=", True),
            ],
            ["stage_id"],
            ["__count"],
        )
        skipped = {stage.id: count for stage, count in skipped}
        current = self.env["crm.lead"]._read_group(
            [
                *base,
                ("type", "=", "opportunity"),
                ("active", "=", True),
                *self._period_domain("date_last_stage_update", start, end),
            ],
            ["stage_id"],
            ["__count"],
        )
        for stage, count in current:
            funnel.setdefault(stage.id, {})["current"] = count
        return funnel, skipped

    def _stage_velocity(self, base, start, end):
        """Days in each stage of the visits that ended in the period: average, median (of
        whole days) and count per stage, per stage and team, per stage and salesperson;
        from the kept figures, else from the visits (one query)."""
        rules = self.env["crm.pipeline.figure"]._reader_rules()
        if rules is not None:
            return self.env["crm.pipeline.figure"]._stage_velocity(rules, base, start, end)
        Visit = self.env["crm.lead.stage.visit"]
        Visit.flush_model(["stage_id", "team_id", "user_id", "days"])
        query = Visit._search([*base, *self._period_domain("date_left", start, end)])
        visit = SQL.identifier(query.table)
        select = query.select(
            SQL("%s.stage_id", visit),
            SQL("%s.team_id", visit),
            SQL("%s.user_id", visit),
            SQL("GROUPING(%s.team_id, %s.user_id) AS level", visit, visit),
            SQL("count(*) AS visits"),
            SQL("avg(%s.days) AS average", visit),
            SQL(
                "percentile_cont(0.5) WITHIN GROUP (ORDER BY %s) AS median",
                stage_flow.whole_days_sql(SQL("%s.days", visit)),
            ),
        )
        rows = self.env.execute_query_dict(
            SQL(
                "%s GROUP BY GROUPING SETS ((%s.stage_id), (%s.stage_id, %s.team_id), "
                "(%s.stage_id, %s.user_id))",
                select,
                visit,
                visit,
                visit,
                visit,
                visit,
            )
        )
        return rows

    def _stage_flow_row(self, stage, funnel, velocity, base, start, end):
        entered = sum(funnel.values())
        total = next(
            (row for row in velocity if row["level"] == 3 and row["stage_id"] == stage.id), {}
        )
        entered_in_period = self._period_domain("date_entered", start, end)
        deals_domain = [
            *base,
            "|",
            (
                "stage_visit_ids",
                "any",
                [("stage_id", "=", stage.id), *entered_in_period],
            ),
            "&",
            ("stage_id", "=", stage.id),
            "&",
            *self._period_domain("date_last_stage_update", start, end),
        ]
        return {
            "id": stage.id,
            "label": stage.name,
            "entered": entered,
            "forward": funnel.get("forward", 0),
            "back": funnel.get("back", 0),
            "won": funnel.get("won", 0),
            "lost": funnel.get("lost", 0),
            "current": funnel.get("current", 0),
            "conversion": 100 * funnel.get("forward", 0) / entered if entered else None,
            "average_days": total.get("average"),
            "median_days": total.get("median"),
            "ended": total.get("visits", 0),
            "expected_max": stage.expected_days_max or None,
            "domain": deals_domain,
        }

    def _velocity_rows(self, velocity, key, stages):
        """Per team or salesperson and stage: visits, average and median days, and whether
        the average is over the stage's expected maximum."""
        level = 1 if key == "team_id" else 2  # GROUPING(team, user): 1 user grouped away
        model = "crm.team" if key == "team_id" else "res.users"
        stage_by_id = {stage.id: stage for stage in stages}
        rows = [row for row in velocity if row["level"] == level and row["stage_id"] in stage_by_id]
        names = dict(
            self.env[model]
            .sudo()
            .browse({row[key] for row in rows if row[key]})
            .mapped(lambda record: (record.id, record.display_name))
        )
        return sorted(
            (
                {
                    "stage": stage_by_id[row["stage_id"]].name,
                    "name": names.get(row[key]) or self.env._("None"),
                    "visits": row["visits"],
                    "average_days": row["average"],
                    "median_days": row["median"],
                    "is_slow": bool(
                        stage_by_id[row["stage_id"]].expected_days_max
                        and row["average"] > stage_by_id[row["stage_id"]].expected_days_max
                    ),
                }
                for row in rows
            ),
            key=lambda row: (-(row["average_days"] or 0), row["stage"], row["name"]),
        )
