from odoo import api, fields, models
from odoo.tools import SQL

from ..rules import forecast

# A deal's score is read a month before it closed, from the monthly snapshots; a deal
# closed before the snapshots began is read at closing (its score then).
PREDICTION_LEAD_DAYS = 30
CALIBRATION_MONTHS = 12


def _or_false(value):
    """A figure that cannot be measured (no deal, or no won or no lost deal) is empty."""
    return False if value is None else value


class CrmLeadScoreSnapshot(models.Model):
    """The score and crm's probability of each open opportunity at the start of a month:
    what the forecast was when it was made, for the calibration."""

    _name = "crm.lead.score.snapshot"
    _description = "Lead Score Snapshot"
    _log_access = False
    _order = "date desc, id desc"

    lead_id = fields.Many2one("crm.lead", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one("res.company", index=True)
    date = fields.Date(required=True, index=True)
    score = fields.Integer()
    probability = fields.Float()

    _sql_constraints = [
        ("lead_date_unique", "UNIQUE(lead_id, date)", "One snapshot a lead and a month."),
    ]

    @api.model
    def _take_snapshot(self):
        """This month's snapshot of the open opportunities, once (set-based)."""
        self.env["crm.lead"].flush_model(["score", "probability", "active", "type", "stage_id"])
        month = fields.Date.today().replace(day=1)
        self.env.execute_query(
            SQL(
                """INSERT INTO crm_lead_score_snapshot (lead_id, company_id, date, score,
                                                       probability)
                   SELECT lead.id, lead.company_id, %s, lead.score, lead.probability
                     FROM crm_lead lead
                LEFT JOIN crm_stage stage ON stage.id = lead.stage_id
                    WHERE lead.active AND lead.type = 'opportunity'
                      AND NOT COALESCE(stage.is_won, FALSE)
                   ON CONFLICT (lead_id, date) DO NOTHING""",
                month,
            )
        )


class CrmLeadScoreCalibration(models.Model):
    """Of the deals a company closed in the last twelve months, how many of each score
    bucket were won: the score's calibrated win likelihood."""

    _name = "crm.lead.score.calibration"
    _description = "Lead Score Calibration"
    _order = "company_id, bucket"

    company_id = fields.Many2one("res.company", index=True)
    bucket = fields.Integer(required=True, help="Scores from ten times this to nine more.")
    score_range = fields.Char(compute="_compute_score_range")
    closed_count = fields.Integer(string="Closed Deals")
    won_count = fields.Integer(string="Won Deals")
    win_rate = fields.Float(string="Actual Win Rate (%)", digits=(16, 1))
    likelihood = fields.Float(
        string="Calibrated Likelihood (%)",
        digits=(16, 1),
        help="The bucket's win rate, drawn towards 50 % when it holds few deals.",
    )
    month_before_count = fields.Integer(
        string="Read a Month Before",
        help="Deals whose score was read from the snapshot of a month before they closed; "
        "the others' at closing.",
    )

    @api.depends("bucket")
    def _compute_score_range(self):
        for row in self:
            low = row.bucket * forecast.BUCKET_WIDTH
            high = 100 if row.bucket == forecast.BUCKETS - 1 else low + forecast.BUCKET_WIDTH - 1
            row.score_range = f"{low}–{high}"

    @api.model
    def _cron_calibrate(self):
        self.env["crm.lead.score.snapshot"]._take_snapshot()
        self._calibrate()

    @api.model
    def _calibrate(self):
        """Count again every company's closed deals per bucket, and the quality of the
        module's likelihood and of crm's probability for them."""
        rows = self.env.execute_query_dict(self._closed_deals_sql())
        by_company = {}
        for row in rows:
            by_company.setdefault(row["company_id"], []).append(row)
        self.sudo().search([]).unlink()  # pylint: disable=no-search-all
        self.sudo().create(
            [
                {
                    "company_id": company_id,
                    "bucket": bucket,
                    "closed_count": closed,
                    "won_count": won,
                    "win_rate": 100 * won / closed,
                    "likelihood": 100 * forecast.calibrated_rate(won, closed),
                    "month_before_count": month_before,
                }
                for company_id, company_rows in by_company.items()
                for bucket, closed, won, month_before in self._buckets(company_rows)
            ]
        )
        for company in self.env["res.company"].sudo().search([]):  # pylint: disable=no-search-all
            company.write(self._quality(by_company.get(company.id, [])))

    @staticmethod
    def _buckets(rows):
        totals = {}
        for row in rows:
            bucket = totals.setdefault(row["bucket"], [0, 0, 0])
            bucket[0] += row["deals"]
            bucket[1] += row["deals"] if row["won"] else 0
            bucket[2] += row["deals"] if row["month_before"] else 0
        return [(bucket, *counts) for bucket, counts in sorted(totals.items())]

    def _quality(self, rows):
        """Brier score and ROC AUC of the calibrated likelihood and of crm's probability,
        on the deals read a month before (crm's probability at closing is 0 or 100)."""
        likelihoods = {
            bucket: forecast.calibrated_rate(won, closed)
            for bucket, closed, won, _month_before in self._buckets(rows)
        }
        module = [
            (likelihoods[row["bucket"]], int(row["won"]), row["deals"])
            for row in rows
            if row["month_before"]
        ]
        crm = [
            ((row["probability"] or 0) / 100, int(row["won"]), row["deals"])
            for row in rows
            if row["month_before"]
        ]
        return {
            "score_calibration_deals": sum(row["deals"] for row in rows),
            "score_calibration_month_before": sum(deals for _p, _w, deals in module),
            "score_brier": _or_false(forecast.brier_score(module)),
            "score_auc": _or_false(forecast.roc_auc(module)),
            "crm_probability_brier": _or_false(forecast.brier_score(crm)),
            "crm_probability_auc": _or_false(forecast.roc_auc(crm)),
            "score_calibrated_on": fields.Datetime.now(),
        }

    @api.model
    def _closed_deals_sql(self):
        """Closed deals of the last twelve months grouped by company, score bucket, outcome,
        whether read a month before, and crm's probability then."""
        self.env["crm.lead"].flush_model(
            ["date_closed", "score", "probability", "active", "stage_id", "type"]
        )
        self.env["crm.lead.score.snapshot"].flush_model()
        return SQL(
            """
            WITH closed AS (
                SELECT lead.id, lead.company_id, lead.date_closed, lead.score,
                       (lead.active AND COALESCE(stage.is_won, FALSE)) AS won
                  FROM crm_lead lead
             LEFT JOIN crm_stage stage ON stage.id = lead.stage_id
                 WHERE lead.type = 'opportunity'
                   AND lead.date_closed >= now() - make_interval(months => %(months)s)
                   AND ((lead.active AND COALESCE(stage.is_won, FALSE))
                        OR (NOT lead.active AND lead.probability = 0))
            ), predicted AS (
                SELECT closed.*, snapshot.score AS snapshot_score,
                       snapshot.probability AS snapshot_probability
                  FROM closed
                  LEFT JOIN LATERAL (
                        SELECT s.score, s.probability FROM crm_lead_score_snapshot s
                         WHERE s.lead_id = closed.id
                           AND s.date <= (closed.date_closed
                                          - make_interval(days => %(lead_days)s))::date
                      ORDER BY s.date DESC LIMIT 1) snapshot ON TRUE
            )
            SELECT company_id, %(bucket)s AS bucket, won,
                   snapshot_score IS NOT NULL AS month_before,
                   round(snapshot_probability) AS probability, count(*) AS deals
              FROM predicted
          GROUP BY 1, 2, 3, 4, 5
            """,
            months=CALIBRATION_MONTHS,
            lead_days=PREDICTION_LEAD_DAYS,
            bucket=forecast.score_bucket_sql(SQL("COALESCE(snapshot_score, score)")),
        )
