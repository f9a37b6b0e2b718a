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
    def _rebuild(self):
        """Relearns every factor from the closed leads, in two queries. Won: active in a won
        stage; lost: archived with probability 0 (crm's definitions). A stage counts as
        reached by every won deal and by lost deals lost in it or later; an age bucket by
        every closed deal whose cycle lasted at least that long."""
        self.env.flush_all()
        self.env.cr.execute(SQL("DELETE FROM crm_lead_scoring_factor"))
        self.env.cr.execute(
            SQL(
                """
            WITH closed AS MATERIALIZED (
                SELECT l.id, l.company_id, l.source_id, l.team_id, l.user_id,
                       l.active AND stage.is_won IS TRUE AS won,
                       COALESCE(stage.sequence, 0) AS stage_sequence,
                       COALESCE(l.day_close, 0) AS cycle_days
                  FROM crm_lead l
             LEFT JOIN crm_stage stage ON stage.id = l.stage_id
                 WHERE (l.active AND stage.is_won)
                    OR (NOT l.active AND COALESCE(l.probability, 0) = 0)
            ), base AS (
                SELECT company_id,
                       COUNT(*) FILTER (WHERE won) AS won,
                       COUNT(*) FILTER (WHERE NOT won) AS lost,
                       (COUNT(*) FILTER (WHERE won) + 1.0) / (COUNT(*) + 2.0) AS rate
                  FROM closed GROUP BY company_id
            ), by_stage AS (
                SELECT company_id, stage_sequence,
                       COUNT(*) FILTER (WHERE won) AS won, COUNT(*) FILTER (WHERE NOT won) AS lost
                  FROM closed GROUP BY company_id, stage_sequence
            ), by_age AS (
                SELECT company_id, cycle_days,
                       COUNT(*) FILTER (WHERE won) AS won, COUNT(*) FILTER (WHERE NOT won) AS lost
                  FROM closed GROUP BY company_id, cycle_days
            ), counts AS (
                SELECT company_id, 'source' AS variable, source_id AS value,
                       COUNT(*) FILTER (WHERE won) AS won, COUNT(*) FILTER (WHERE NOT won) AS lost
                  FROM closed WHERE source_id IS NOT NULL GROUP BY company_id, source_id
                UNION ALL
                SELECT company_id, 'team', team_id,
                       COUNT(*) FILTER (WHERE won), COUNT(*) FILTER (WHERE NOT won)
                  FROM closed WHERE team_id IS NOT NULL GROUP BY company_id, team_id
                UNION ALL
                SELECT company_id, 'user', user_id,
                       COUNT(*) FILTER (WHERE won), COUNT(*) FILTER (WHERE NOT won)
                  FROM closed WHERE user_id IS NOT NULL GROUP BY company_id, user_id
                UNION ALL
                SELECT closed.company_id, 'tag', rel.tag_id,
                       COUNT(*) FILTER (WHERE won), COUNT(*) FILTER (WHERE NOT won)
                  FROM closed JOIN crm_tag_rel rel ON rel.lead_id = closed.id
              GROUP BY closed.company_id, rel.tag_id
                UNION ALL
                SELECT by_stage.company_id, 'stage', stage.id,
                       SUM(by_stage.won),
                       SUM(by_stage.lost) FILTER (WHERE by_stage.stage_sequence >= stage.sequence)
                  FROM by_stage CROSS JOIN crm_stage stage
                 WHERE NOT COALESCE(stage.is_won, FALSE)
              GROUP BY by_stage.company_id, stage.id
                UNION ALL
                SELECT by_age.company_id, 'age', bucket.value,
                       SUM(by_age.won) FILTER (WHERE by_age.cycle_days >= bucket.start),
                       SUM(by_age.lost) FILTER (WHERE by_age.cycle_days >= bucket.start)
                  FROM by_age CROSS JOIN (VALUES %(buckets)s) AS bucket(value, start)
              GROUP BY by_age.company_id, bucket.value
            )
            INSERT INTO crm_lead_scoring_factor
                   (company_id, variable, value, won_count, lost_count, log_odds)
            SELECT counts.company_id, counts.variable, counts.value, counts.won, counts.lost,
                   ln((counts.won + %(prior)s * base.rate)
                      / (counts.lost + %(prior)s * (1 - base.rate)))
                   - ln(base.rate / (1 - base.rate))
              FROM counts
              JOIN base ON base.company_id IS NOT DISTINCT FROM counts.company_id
             UNION ALL
            SELECT company_id, 'base', 0, won, lost, ln(rate / (1 - rate)) FROM base
                """,
                buckets=SQL(", ").join(
                    SQL("(%s, %s)", value, start) for value, start in AGE_BUCKETS
                ),
                prior=PRIOR_DEALS,
            )
        )
        self.invalidate_model()
