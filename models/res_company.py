from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..rules import forecast
from ..rules.stage_clock import DEFAULT_STALE_AFTER_DAYS
from ..rules.stars import DEFAULT_THRESHOLDS

DEFAULT_MERGE_UNDO_DAYS = 30

SCORE_SETTINGS = (
    "score_threshold_one_star",
    "score_threshold_two_stars",
    "score_threshold_three_stars",
    "score_learned_weight",
)


class ResCompany(models.Model):
    _inherit = "res.company"

    score_threshold_one_star = fields.Integer(
        string="One Star Above",
        default=DEFAULT_THRESHOLDS[0],
        help="A lead scoring more than this gets one star.",
    )
    score_threshold_two_stars = fields.Integer(
        string="Two Stars Above",
        default=DEFAULT_THRESHOLDS[1],
        help="A lead scoring more than this gets two stars.",
    )
    score_threshold_three_stars = fields.Integer(
        string="Three Stars Above",
        default=DEFAULT_THRESHOLDS[2],
        help="A lead scoring more than this gets three stars.",
    )
    score_learned_weight = fields.Integer(
        string="Learned Part Weight (%)",
        default=30,
        help="Share of the score that comes from the win likelihood learned from this "
        "company's won and lost history; the rest comes from the qualification criteria.",
    )

    forecast_commit_score = fields.Integer(
        string="Commit From Score",
        default=forecast.DEFAULT_THRESHOLDS[0],
        help="An opportunity whose salesperson set no forecast category is in Commit from "
        "this score.",
    )
    forecast_best_case_score = fields.Integer(
        string="Best Case From Score",
        default=forecast.DEFAULT_THRESHOLDS[1],
        help="An opportunity whose salesperson set no forecast category is in Best Case "
        "from this score, below the commit score.",
    )

    # The calibration's quality figures, counted again every night.
    score_calibration_deals = fields.Integer(string="Closed Deals Calibrated", readonly=True)
    score_calibration_month_before = fields.Integer(
        string="Read a Month Before Closing", readonly=True
    )
    score_brier = fields.Float(string="Score: Brier", digits=(16, 3), readonly=True)
    score_auc = fields.Float(string="Score: ROC AUC", digits=(16, 3), readonly=True)
    crm_probability_brier = fields.Float(
        string="crm's Probability: Brier", digits=(16, 3), readonly=True
    )
    crm_probability_auc = fields.Float(
        string="crm's Probability: ROC AUC", digits=(16, 3), readonly=True
    )
    score_calibrated_on = fields.Datetime(readonly=True)

    pipeline_stale_after_days = fields.Integer(
        string="Stale After (days)",
        default=DEFAULT_STALE_AFTER_DAYS,
        help="An open opportunity with no planned activity and no news for more than this "
        "many days is stale and gets a follow-up activity. Sales teams may override it.",
    )
    merge_undo_days = fields.Integer(
        string="Undo Merges Within (days)",
        default=DEFAULT_MERGE_UNDO_DAYS,
        help="A merge of leads or opportunities can be undone for this many days.",
    )
    pipeline_followup_activity_type_id = fields.Many2one(
        "mail.activity.type",
        string="Follow-up Activity",
        domain="[('res_model', 'in', (False, 'crm.lead'))]",
        help="Activity scheduled for the salesperson of a stale opportunity.",
    )

    @api.constrains("forecast_commit_score", "forecast_best_case_score")
    def _check_forecast_scores(self):
        for company in self:
            if not 0 <= company.forecast_best_case_score <= company.forecast_commit_score <= 100:
                raise ValidationError(
                    self.env._(
                        "The forecast scores must run from 0 to 100, the best case score "
                        "(%(best_case)s) no higher than the commit score (%(commit)s).",
                        best_case=company.forecast_best_case_score,
                        commit=company.forecast_commit_score,
                    )
                )

    @api.constrains("merge_undo_days")
    def _check_merge_undo_days(self):
        if any(company.merge_undo_days < 1 for company in self):
            raise ValidationError(self.env._("Merges can be undone for at least one day."))

    @api.constrains("pipeline_stale_after_days")
    def _check_pipeline_stale_after_days(self):
        if any(company.pipeline_stale_after_days < 1 for company in self):
            raise ValidationError(
                self.env._("An opportunity can only be stale after one day or more.")
            )

    @api.constrains(*SCORE_SETTINGS)
    def _check_score_settings(self):
        for company in self:
            thresholds = [
                company.score_threshold_one_star,
                company.score_threshold_two_stars,
                company.score_threshold_three_stars,
            ]
            if not 0 <= thresholds[0] < thresholds[1] < thresholds[2] < 100:
                raise ValidationError(
                    self.env._(
                        "The score thresholds for one, two and three stars must increase "
                        "strictly between 0 and 100 (got %(one)s, %(two)s, %(three)s).",
                        one=thresholds[0],
                        two=thresholds[1],
                        three=thresholds[2],
                    )
                )
            if not 0 <= company.score_learned_weight <= 100:
                raise ValidationError(
                    self.env._("The weight of the learned part must be between 0 and 100 %.")
                )

    def write(self, vals):
        changed = self._changed_by(vals, SCORE_SETTINGS)
        thresholds_changed = self._changed_by(vals, forecast.THRESHOLD_FIELDS)
        res = super().write(vals)
        if changed:
            self.env["crm.lead"]._trigger_score_recompute()
        if thresholds_changed:
            self.env["crm.pipeline.figure"]._recount_forecast(thresholds_changed)
        return res

    def _changed_by(self, vals, fnames):
        """The companies whose `fnames` the write of `vals` changes."""
        return self.filtered(
            lambda company: any(company[fname] != vals[fname] for fname in fnames if fname in vals)
        )
