import math
from collections import defaultdict

from odoo import api, fields, models
from odoo.tools import SQL

# Smoothing: each value's win rate starts from this many pseudo-deals at the company's
# overall win rate, so that a source seen on three deals does not swing scores.
PRIOR_DEALS = 10
# Age buckets (days since creation) and where they start.
AGE_BUCKETS = ((0, 0), (1, 31), (2, 91), (3, 181))


class CrmLeadScoringFactor(models.Model):
    """What the company's closed history says about each value of a lead's attributes:
    won and lost counts and the log-odds it adds to the company's base win rate."""

    _name = "crm.lead.scoring.factor"
    _description = "Learned Lead Scoring Factor"
    _order = "company_id, variable, value"
    _log_access = False

    company_id = fields.Many2one("res.company", index=True, ondelete="cascade")
    variable = fields.Selection(
        [
            ("base", "Company Win Rate"),
            ("source", "Source"),
            ("team", "Sales Team"),
            ("user", "Salesperson"),
            ("tag", "Tag"),
            ("stage", "Stage Reached"),
            ("age", "Age (days since creation)"),
        ],
        required=True,
    )
    value = fields.Integer(help="Id of the source, team, salesperson, tag or stage; age bucket.")
    won_count = fields.Integer(readonly=True)
    lost_count = fields.Integer(readonly=True)
    log_odds = fields.Float(readonly=True, digits=(16, 4))

    _sql_constraints = [
        (
            "variable_value_uniq",
            "UNIQUE NULLS NOT DISTINCT (company_id, variable, value)",
            "A factor is learned once per company, variable and value.",
        ),
    ]

    @api.model
    def _rebuild(self, history=None):
        """Relearns every factor from the closed leads. Won: active in a won stage; lost:
        archived with probability 0 (crm's definitions). A stage counts as reached by every
        won deal and by lost deals lost in it or later; an age bucket by every closed deal
        whose cycle lasted at least that long.

        Two read-only queries count the closed deals, grouped finely enough for every
        factor (PostgreSQL runs them in parallel; an INSERT … SELECT could not); the few
        hundred factors are then derived here and inserted at once. `history`: the two
        queries' results when the caller ran them already (on other connections)."""
        self.env.flush_all()
        groups, tags = history or (self._closed_deal_groups(), self._closed_deal_tags())
        counts = defaultdict(lambda: [0, 0])  # (company, variable, value): [won, lost]
        # Per company: {stage sequence: [won, lost]} and {age bucket: [won, lost]}.
        by_sequence = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        by_age = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        for row in groups:
            company_id, source_id, team_id, user_id, sequence, age, won, deals = row
            outcome = 0 if won else 1
            counts[company_id, "base", 0][outcome] += deals
            for variable, value in (("source", source_id), ("team", team_id), ("user", user_id)):
                if value:
                    counts[company_id, variable, value][outcome] += deals
            by_sequence[company_id][sequence][outcome] += deals
            by_age[company_id][age][outcome] += deals
        for company_id, tag_id, won, deals in tags:
            counts[company_id, "tag", tag_id][0 if won else 1] += deals
        self._count_stage_and_age(counts, by_sequence, by_age)
        self.env.cr.execute(SQL("DELETE FROM crm_lead_scoring_factor"))
        rows = self._factor_rows(counts)
        if rows:
            self.env.cr.execute(
                SQL(
                    """INSERT INTO crm_lead_scoring_factor
                           (company_id, variable, value, won_count, lost_count, log_odds)
                       VALUES %s""",
                    SQL(", ").join(SQL("(%s, %s, %s, %s, %s, %s)", *row) for row in rows),
                )
            )
        self.invalidate_model()

    @api.model
    def _closed_deal_where(self):
        return SQL(
            """(l.active AND stage.is_won)
               OR (NOT l.active AND COALESCE(l.probability, 0) = 0)"""
        )

    @api.model
    def _closed_deal_groups(self):
        """Closed deals counted by company, source, team, salesperson, stage sequence
        reached, age bucket of their cycle (-1: closed before created) and outcome."""
        self.env.cr.execute(
            SQL(
                """SELECT l.company_id, l.source_id, l.team_id, l.user_id,
                          COALESCE(stage.sequence, 0),
                          -1 %(age)s,
                          l.active AND stage.is_won IS TRUE,
                          COUNT(*)
                     FROM crm_lead l
                LEFT JOIN crm_stage stage ON stage.id = l.stage_id
                    WHERE %(closed)s
                 GROUP BY 1, 2, 3, 4, 5, 6, 7""",
                age=SQL("").join(
                    SQL(" + (COALESCE(l.day_close, 0) >= %s)::int", start)
                    for _value, start in AGE_BUCKETS
                ),
                closed=self._closed_deal_where(),
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _closed_deal_tags(self):
        self.env.cr.execute(
            SQL(
                """SELECT l.company_id, rel.tag_id, l.active AND stage.is_won IS TRUE, COUNT(*)
                     FROM crm_tag_rel rel
                     JOIN crm_lead l ON l.id = rel.lead_id
                LEFT JOIN crm_stage stage ON stage.id = l.stage_id
                    WHERE %s
                 GROUP BY 1, 2, 3""",
                self._closed_deal_where(),
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _count_stage_and_age(self, counts, by_sequence, by_age):
        """Adds to `counts` the cumulative factors: 'stage reached' (every won deal, and
        the lost deals lost in that stage or a later one) and 'cycle at least this long'."""
        # sudo: the stages of every team count, whoever runs the job
        stages = self.env["crm.stage"].sudo().search_read([("is_won", "=", False)], ["sequence"])
        for company_id, tallies in by_sequence.items():
            won = counts[company_id, "base", 0][0]
            for stage in stages:
                lost = sum(t[1] for sequence, t in tallies.items() if sequence >= stage["sequence"])
                counts[company_id, "stage", stage["id"]] = [won, lost]
        for company_id, tallies in by_age.items():
            for value, _start in AGE_BUCKETS:
                reached = [t for age, t in tallies.items() if age >= value]
                counts[company_id, "age", value] = [
                    sum(t[0] for t in reached),
                    sum(t[1] for t in reached),
                ]

    @api.model
    def _factor_rows(self, counts):
        """(company, variable, value, won, lost, log-odds) for every counted value: the
        value's smoothed win odds against its company's, in log."""
        rates = {
            company_id: (won + 1.0) / (won + lost + 2.0)
            for (company_id, variable, _value), (won, lost) in counts.items()
            if variable == "base"
        }
        rows = []
        for (company_id, variable, value), (won, lost) in counts.items():
            rate = rates[company_id]
            base_log_odds = math.log(rate / (1 - rate))
            if variable == "base":
                log_odds = base_log_odds
            else:
                log_odds = (
                    math.log((won + PRIOR_DEALS * rate) / (lost + PRIOR_DEALS * (1 - rate)))
                    - base_log_odds
                )
            rows.append((company_id, variable, value, won, lost, round(log_odds, 4)))
        return rows
