from odoo import api, fields, models


class CrmStageExitCheck(models.Model):
    """One of a stage's exit criteria, as a condition an opportunity meets or not."""

    _name = "crm.stage.exit.check"
    _inherit = "crm.lead.condition.mixin"
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

    @api.model_create_multi
    def create(self, vals_list):
        checks = super().create(vals_list)
        self.env.registry.clear_cache()
        return checks

    def write(self, vals):
        res = super().write(vals)
        self.env.registry.clear_cache()
        return res

    def unlink(self):
        res = super().unlink()
        self.env.registry.clear_cache()
        return res
