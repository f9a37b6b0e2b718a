from odoo import api, fields, models
from odoo.exceptions import UserError


class CrmMergeOpportunity(models.TransientModel):
    """crm's Merge (the list's Action menu) merges through the module's merge: any number
    of records, nothing lost, undoable."""

    _inherit = "crm.merge.opportunity"

    master_id = fields.Many2one(
        "crm.lead",
        string="Keep",
        compute="_compute_master_id",
        store=True,
        readonly=False,
        domain="[('id', 'in', opportunity_ids)]",
        context={"active_test": False},
        help="The record the others merge into. By default a won deal, else the most "
        "advanced open one, as crm's own merge chooses.",
    )

    @api.depends("opportunity_ids")
    def _compute_master_id(self):
        for wizard in self:
            if wizard.master_id not in wizard.opportunity_ids:
                wizard.master_id = wizard.opportunity_ids._merge_default_master()

    def action_merge(self):
        self.ensure_one()
        if not self.master_id:
            raise UserError(self.env._("Choose the record to keep."))
        merged = self.opportunity_ids._merge_into(
            self.master_id, user_id=self.user_id.id, team_id=self.team_id.id
        )
        return merged.redirect_lead_opportunity_view()
