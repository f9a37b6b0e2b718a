from odoo import api, fields, models
from odoo.osv import expression
from odoo.tools import SQL

from ..rules import forecast

FORECAST_CATEGORIES = [
    ("commit", "Commit"),
    ("best_case", "Best Case"),
    ("pipeline", "Pipeline"),
    ("omitted", "Omitted"),
]


class CrmLead(models.Model):
    """Forecast: the deal's forecast category, and the hygiene of its expected closing."""

    _inherit = "crm.lead"

    # crm does not track it; pushed deadlines are read from its tracking.
    date_deadline = fields.Date(tracking=True)
    forecast_category = fields.Selection(
        FORECAST_CATEGORIES,
        compute="_compute_forecast_category",
        inverse="_inverse_forecast_category",
        search="_search_forecast_category",
        help="Where the salesperson forecasts this deal. Until they set it, it follows the "
        "score: Commit and Best Case from the company's scores in Settings, else Pipeline.",
    )
    forecast_category_manual = fields.Selection(
        FORECAST_CATEGORIES,
        string="Forecast Category Set",
        copy=False,
        help="The forecast category the salesperson set; empty when it follows the score.",
    )
    deadline_push_count = fields.Integer(
        string="Closing Pushed",
        copy=False,
        readonly=True,
        help="How many times the expected closing date of this open deal was moved later.",
    )
    deadline_pushed_days = fields.Integer(
        string="Days Pushed",
        copy=False,
        readonly=True,
        help="Days the expected closing date was moved later, in total.",
    )
    is_deadline_passed = fields.Boolean(
        string="Closing Date Passed",
        compute="_compute_is_deadline_passed",
        search="_search_is_deadline_passed",
        help="Still open after its expected closing date.",
    )

    @api.depends(
        "forecast_category_manual",
        "score",
        "company_id.forecast_commit_score",
        "company_id.forecast_best_case_score",
    )
    def _compute_forecast_category(self):
        for lead in self:
            lead.forecast_category = lead.forecast_category_manual or (
                forecast.category_from_score(
                    lead.score, forecast.company_thresholds(lead.company_id)
                )
            )

    def _inverse_forecast_category(self):
        for lead in self:
            lead.forecast_category_manual = lead.forecast_category

    def _search_forecast_category(self, operator, value):
        if operator not in ("=", "!=", "in", "not in"):
            return NotImplemented
        values = [value] if operator in ("=", "!=") else list(value)
        positive = expression.OR(
            [
                [("forecast_category_manual", "in", values)],
                *(
                    self._forecast_score_domain(category)
                    for category in values
                    if category in ("commit", "best_case", "pipeline")
                ),
            ]
        )
        if operator in ("=", "in"):
            return positive
        return ["!", *expression.normalize_domain(positive)]

    def _forecast_score_domain(self, category):
        """The leads without a set category whose score gives `category`, per company."""
        companies = self.env["res.company"].sudo().search([])  # pylint: disable=no-search-all
        by_company = [
            (company.id, forecast.company_thresholds(company)) for company in companies
        ] + [(False, forecast.DEFAULT_THRESHOLDS)]
        ranges = {
            "commit": lambda commit, best_case: [("score", ">=", commit)],
            "best_case": lambda commit, best_case: [
                ("score", ">=", best_case),
                ("score", "<", commit),
            ],
            "pipeline": lambda commit, best_case: [("score", "<", best_case)],
        }
        return expression.AND(
            [
                [("forecast_category_manual", "=", False)],
                expression.OR(
                    [
                        [("company_id", "=", company_id), *ranges[category](*thresholds)]
                        for company_id, thresholds in by_company
                    ]
                ),
            ]
        )

    @api.depends("date_deadline", "active", "stage_id.is_won", "type")
    @api.depends_context("tz")
    def _compute_is_deadline_passed(self):
        today = fields.Date.context_today(self)
        for lead in self:
            lead.is_deadline_passed = bool(
                lead.date_deadline
                and lead.date_deadline < today
                and lead.active
                and lead.type == "opportunity"
                and not lead.stage_id.is_won
            )

    def _search_is_deadline_passed(self, operator, value):
        if operator not in ("=", "!="):
            return NotImplemented
        passed = [
            ("date_deadline", "<", fields.Date.context_today(self)),
            ("active", "=", True),
            ("type", "=", "opportunity"),
            ("stage_id.is_won", "=", False),
        ]
        if (operator == "=") == bool(value):
            return passed
        return ["!", *expression.normalize_domain(passed)]

    def _cron_update_automated_probabilities(self):
        """crm's nightly rescoring rewrites the probability of every open lead, and with it
        the forecast's weighted figures (a delta per lead): folded right after, so that the
        day's forecast reads one row per key."""
        res = super()._cron_update_automated_probabilities()
        self.env["crm.pipeline.figure"]._cron_fold_figures()
        return res

    def _cron_update_scores(self):
        """The module's nightly rescoring, folded after as crm's is."""
        res = super()._cron_update_scores()
        self.env["crm.pipeline.figure"]._cron_fold_figures()
        return res

    def write(self, vals):
        if vals.get("date_deadline"):
            self._count_deadline_pushes(fields.Date.to_date(vals["date_deadline"]))
        return super().write(vals)

    def _count_deadline_pushes(self, new_deadline):
        """One more push, and its days, for the open deals whose expected closing moves later
        (set-based: one UPDATE for the whole write)."""
        ids = [lead_id for lead_id in self._ids if lead_id]
        if not ids:
            return
        pushes = ["deadline_push_count", "deadline_pushed_days"]
        self.flush_recordset(["date_deadline", "active", "type", "stage_id", *pushes])
        self.env.execute_query(
            SQL(
                """UPDATE crm_lead lead
                      SET deadline_push_count = COALESCE(lead.deadline_push_count, 0) + 1,
                          deadline_pushed_days = COALESCE(lead.deadline_pushed_days, 0)
                                                 + (%(new)s - lead.date_deadline)
                    WHERE lead.id IN %(ids)s
                      AND lead.active AND lead.type = 'opportunity'
                      AND NOT EXISTS (SELECT FROM crm_stage stage
                                       WHERE stage.id = lead.stage_id AND stage.is_won)
                      AND lead.date_deadline < %(new)s""",
                new=new_deadline,
                ids=tuple(ids),
            )
        )
        self.invalidate_recordset(pushes, flush=False)
