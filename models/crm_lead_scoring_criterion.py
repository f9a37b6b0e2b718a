from odoo import api, fields, models
from odoo.exceptions import ValidationError


class CrmLeadScoringCriterion(models.Model):
    _name = "crm.lead.scoring.criterion"
    _inherit = "crm.lead.condition.mixin"
    _description = "Lead Qualification Criterion"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    points = fields.Integer(
        required=True,
        help="Points a matching lead earns. Negative points disqualify.",
    )
    domain = fields.Char(help="Leads matching this condition earn the criterion's points.")
    description = fields.Text(translate=True)
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        index=True,
        help="Leave empty to apply the criterion in every company.",
    )
    team_id = fields.Many2one(
        "crm.team",
        string="Sales Team",
        index=True,
        help="Apply the criterion to this team's leads only.",
    )

    @api.constrains("company_id", "team_id")
    def _check_team_company(self):
        for criterion in self:
            team_company = criterion.team_id.company_id
            if team_company and criterion.company_id and team_company != criterion.company_id:
                raise ValidationError(
                    self.env._(
                        "The criterion “%(name)s” belongs to %(company)s but its sales team "
                        "to %(team_company)s.",
                        name=criterion.name,
                        company=criterion.company_id.name,
                        team_company=team_company.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        criteria = super().create(vals_list)
        self.env["crm.lead"]._trigger_score_recompute()
        return criteria

    def write(self, vals):
        res = super().write(vals)
        if {"points", "domain", "active", "company_id", "team_id"} & set(vals):
            self.env["crm.lead"]._trigger_score_recompute()
        return res

    def unlink(self):
        res = super().unlink()
        self.env["crm.lead"]._trigger_score_recompute()
        return res
