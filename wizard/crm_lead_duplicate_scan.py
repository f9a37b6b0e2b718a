from odoo import fields, models
from odoo.exceptions import UserError
from odoo.tools.safe_eval import safe_eval


class CrmLeadDuplicateScan(models.TransientModel):
    """Finds the duplicate clusters of a sales team or of the leads of a domain."""

    _name = "crm.lead.duplicate.scan"
    _description = "Find Duplicate Leads"

    team_id = fields.Many2one(
        "crm.team", string="Sales Team", help="Only the leads of this team. All teams if empty."
    )
    lead_domain = fields.Char(
        string="Leads",
        default="[]",
        help="Only the leads matching these conditions. All leads if empty.",
    )

    def _scan_domain(self):
        self.ensure_one()
        try:
            domain = list(safe_eval(self.lead_domain or "[]"))
            if self.team_id:
                domain.append(("team_id", "=", self.team_id.id))
            self.env["crm.lead"]._search(domain)
        except Exception as error:
            raise UserError(
                self.env._("These conditions on leads are not valid: %(error)s", error=error)
            ) from error
        return domain

    def action_scan(self):
        self.ensure_one()
        self.env["crm.lead.duplicate.cluster"]._find_clusters(self._scan_domain())
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_pipeline_optimizer.crm_lead_duplicate_cluster_action"
        )
        action["domain"] = [("state", "=", "open")]
        return action
