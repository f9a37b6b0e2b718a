from odoo import api, fields, models
from odoo.exceptions import UserError


class CrmLeadMergeCluster(models.TransientModel):
    """Merges any number of leads and opportunities into the one kept."""

    _name = "crm.lead.merge.cluster"
    _description = "Merge Duplicate Leads"

    cluster_id = fields.Many2one("crm.lead.duplicate.cluster", string="Duplicates")
    lead_ids = fields.Many2many(
        "crm.lead",
        "crm_lead_merge_cluster_lead_rel",
        "wizard_id",
        "lead_id",
        string="Records to Merge",
        context={"active_test": False},
    )
    master_id = fields.Many2one(
        "crm.lead",
        string="Keep",
        compute="_compute_master_id",
        store=True,
        readonly=False,
        domain="[('id', 'in', lead_ids)]",
        context={"active_test": False},
        help="The record the others merge into. By default a won deal, else the most "
        "advanced open one, as crm's own merge chooses.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        compute="_compute_assignment",
        store=True,
        readonly=False,
        domain="[('share', '=', False)]",
    )
    team_id = fields.Many2one(
        "crm.team",
        string="Sales Team",
        compute="_compute_assignment",
        store=True,
        readonly=False,
    )

    @api.model
    def _action_open(self, context):
        """The merge wizard, opened with `context` (the records to merge)."""
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Merge Duplicates"),
            "res_model": self._name,
            "view_mode": "form",
            "target": "new",
            "context": context,
        }

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        if values.get("cluster_id") and "lead_ids" in fields_list:
            cluster = self.env["crm.lead.duplicate.cluster"].browse(values["cluster_id"])
            values["lead_ids"] = [(6, 0, cluster._mergeable_leads().ids)]
        elif context.get("active_model") == "crm.lead" and "lead_ids" in fields_list:
            values["lead_ids"] = [(6, 0, context.get("active_ids") or [])]
        return values

    @api.constrains("lead_ids")
    def _check_leads_writable(self):
        # The selection may come from the external API: refuse at once a record the user
        # may not change (another company's, another salesperson's), not at merge time.
        for wizard in self:
            wizard.lead_ids.check_access("write")

    @api.depends("lead_ids")
    def _compute_master_id(self):
        for wizard in self:
            if wizard.master_id not in wizard.lead_ids:
                wizard.master_id = wizard.lead_ids._merge_default_master()

    @api.depends("master_id")
    def _compute_assignment(self):
        for wizard in self:
            wizard.user_id = wizard.master_id.user_id
            wizard.team_id = wizard.master_id.team_id

    def action_merge(self):
        self.ensure_one()
        if not self.master_id:
            raise UserError(self.env._("Choose the record to keep."))
        master = self.lead_ids._merge_into(
            self.master_id, user_id=self.user_id.id, team_id=self.team_id.id
        )
        if self.cluster_id:
            self.cluster_id._mark_merged(master)
        return master.redirect_lead_opportunity_view()
