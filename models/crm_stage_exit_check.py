from odoo import fields, models


class CrmStageExitCheck(models.Model):
    """One of a stage's exit criteria, as a condition an opportunity meets or not."""

    _name = "crm.stage.exit.check"
    _inherit = ["crm.lead.condition.mixin", "crm.exit.gate.cache.mixin"]
    _description = "Stage Exit Check"
    _order = "stage_id, sequence, id"

    name = fields.Char(string="Check", required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    stage_id = fields.Many2one("crm.stage", required=True, ondelete="cascade", index=True)
    domain = fields.Char(help="An opportunity matching this condition meets the check.")
    company_id = fields.Many2one(
        "res.company",
        index=True,
        help="Leave empty to check the opportunities of every company.",
    )
