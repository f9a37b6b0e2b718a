from odoo import api, fields, models
from odoo.exceptions import ValidationError


class CrmTeam(models.Model):
    _inherit = "crm.team"

    stale_after_days = fields.Integer(
        string="Stale After (days)",
        help="An open opportunity of this team with no planned activity and no news for "
        "more than this many days is stale and gets a follow-up activity. "
        "Zero uses the company's setting.",
    )

    is_stage_skip_restricted = fields.Boolean(
        string="Restrict Skipping Stages",
        help="An opportunity moves forward one stage at a time: a salesperson cannot jump "
        "over a stage (moving to won stays possible); a sales manager can, which is logged.",
    )

    revenue_target_ids = fields.One2many(
        "crm.team.revenue.target", "team_id", string="Revenue Targets"
    )

    @api.constrains("stale_after_days")
    def _check_stale_after_days(self):
        for team in self.filtered(lambda team: team.stale_after_days < 0):
            raise ValidationError(
                self.env._(
                    "Sales team “%(team)s”: the days before an opportunity is stale cannot "
                    "be negative.",
                    team=team.name,
                )
            )

    def _pipeline_health_data(self, period="month"):
        """KPIs of this month for the team, its overdue deals and its top scored open deals,
        for the pipeline health report; read with the reader's access rights."""
        self.ensure_one()
        return self.env["crm.pipeline.dashboard"]._team_health(self, period)

    @api.readonly
    def action_print_pipeline_health(self):
        return self.env.ref("crm_pipeline_optimizer.action_report_pipeline_health").report_action(
            self
        )
