from odoo import models

from ..models.crm_lead_merge import ROUTE_MERGE_CONTEXT_KEY


class CrmLeadToOpportunity(models.TransientModel):
    """Convert to Opportunity ‣ Merge with existing opportunities merges through the
    module's merge."""

    _inherit = "crm.lead2opportunity.partner"

    def _action_merge(self):
        return super(
            CrmLeadToOpportunity, self.with_context(**{ROUTE_MERGE_CONTEXT_KEY: True})
        )._action_merge()


class CrmLeadToOpportunityMass(models.TransientModel):
    """The mass conversion's deduplication merges through the module's merge."""

    _inherit = "crm.lead2opportunity.partner.mass"

    def action_mass_convert(self):
        """crm's deduplication, each customer's open records merged into one before the
        conversion. crm's own loop reads the leads it already merged (and deleted) again
        when a customer has three records or more: this one skips them."""
        self.ensure_one()
        if self.name != "convert" or not self.deduplicate:
            return super().action_mass_convert()
        Lead = self.env["crm.lead"].with_context(**{ROUTE_MERGE_CONTEXT_KEY: True})
        merged_ids, kept_ids = set(), []
        for lead in self.lead_tomerge_ids:
            if lead.id in merged_ids:
                continue
            duplicates = Lead._get_lead_duplicates(
                partner=lead.partner_id,
                email=lead.partner_id.email or lead.email_from,
                include_lost=False,
            )
            if len(duplicates) > 1:
                merged_ids.update(duplicates.ids)
                kept_ids.append(duplicates.merge_opportunity().id)
        active_ids = self.env.context.get("active_ids", [])
        final_ids = [lead_id for lead_id in active_ids if lead_id not in merged_ids]
        final_ids += [lead_id for lead_id in kept_ids if lead_id not in final_ids]
        return self.with_context(active_ids=final_ids).action_apply()
