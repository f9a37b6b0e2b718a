from odoo import api, fields, models
from odoo.exceptions import ValidationError


class CrmTeamRevenueTarget(models.Model):
    _name = "crm.team.revenue.target"
    _description = "Sales Team Revenue Target"
    _order = "date_from desc, team_id"

    team_id = fields.Many2one("crm.team", string="Sales Team", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="team_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="team_id.currency_id")
    date_from = fields.Date(string="From", required=True)
    date_to = fields.Date(string="To", required=True)
    amount = fields.Monetary(string="Target", currency_field="currency_id", required=True)

    _sql_constraints = [
        ("amount_positive", "CHECK(amount > 0)", "A revenue target must be positive."),
    ]

    @api.constrains("date_from", "date_to", "team_id")
    def _check_period(self):
        for target in self:
            if target.date_to < target.date_from:
                raise ValidationError(
                    self.env._(
                        "Revenue target of “%(team)s”: the period ends before it starts.",
                        team=target.team_id.name,
                    )
                )
            overlapping = self.search_count(
                [
                    ("id", "!=", target.id),
                    ("team_id", "=", target.team_id.id),
                    ("date_from", "<=", target.date_to),
                    ("date_to", ">=", target.date_from),
                ]
            )
            if overlapping:
                raise ValidationError(
                    self.env._(
                        "“%(team)s” already has a revenue target overlapping %(start)s – %(end)s.",
                        team=target.team_id.name,
                        start=target.date_from,
                        end=target.date_to,
                    )
                )

    @api.depends("team_id", "date_from", "date_to")
    def _compute_display_name(self):
        for target in self:
            target.display_name = f"{target.team_id.name}: {target.date_from} – {target.date_to}"
