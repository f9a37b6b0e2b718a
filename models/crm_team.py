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
