from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    score_threshold_one_star = fields.Integer(
        related="company_id.score_threshold_one_star", readonly=False
    )
    score_threshold_two_stars = fields.Integer(
        related="company_id.score_threshold_two_stars", readonly=False
    )
    score_threshold_three_stars = fields.Integer(
        related="company_id.score_threshold_three_stars", readonly=False
    )
    score_learned_weight = fields.Integer(related="company_id.score_learned_weight", readonly=False)
    forecast_commit_score = fields.Integer(
        related="company_id.forecast_commit_score", readonly=False
    )
    forecast_best_case_score = fields.Integer(
        related="company_id.forecast_best_case_score", readonly=False
    )
    pipeline_stale_after_days = fields.Integer(
        related="company_id.pipeline_stale_after_days", readonly=False
    )
    merge_undo_days = fields.Integer(related="company_id.merge_undo_days", readonly=False)
    pipeline_followup_activity_type_id = fields.Many2one(
        related="company_id.pipeline_followup_activity_type_id", readonly=False
    )
