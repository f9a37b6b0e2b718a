from itertools import combinations

from odoo import api, fields, models


class CrmLeadDuplicateExclusion(models.Model):
    """Two leads someone said are not duplicates: never shown as similar or clustered
    together again."""

    _name = "crm.lead.duplicate.exclusion"
    _description = "Leads Marked as Not Duplicates"
    _order = "id desc"

    lead_low_id = fields.Many2one(
        "crm.lead", string="Lead", required=True, index=True, ondelete="cascade"
    )
    lead_high_id = fields.Many2one(
        "crm.lead", string="Other Lead", required=True, index=True, ondelete="cascade"
    )

    _sql_constraints = [
        (
            "pair_unique",
            "UNIQUE(lead_low_id, lead_high_id)",
            "These two leads are already marked as not duplicates.",
        ),
        (
            "pair_ordered",
            "CHECK(lead_low_id < lead_high_id)",
            "A pair of leads is stored with the smaller id first.",
        ),
    ]

    @api.model
    def _exclude(self, leads):
        """Marks every pair of these leads as not duplicates (pairs already marked are
        kept); returns the new exclusions."""
        pairs = {(low, high) for low, high in combinations(sorted(set(leads.ids)), 2)}
        if not pairs:
            return self.browse()
        existing = self.search(
            [("lead_low_id", "in", leads.ids), ("lead_high_id", "in", leads.ids)]
        )
        pairs -= {(pair.lead_low_id.id, pair.lead_high_id.id) for pair in existing}
        return self.create(
            [{"lead_low_id": low, "lead_high_id": high} for low, high in sorted(pairs)]
        )
