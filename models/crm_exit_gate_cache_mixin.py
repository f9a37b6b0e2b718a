from odoo import api, models


class CrmExitGateCacheMixin(models.AbstractModel):
    """Records the exit gate reads through the registry's cache (the stages' checks and
    order, `crm.lead._exit_checks_by_stage`): creating, changing or deleting them clears
    it in every worker."""

    _name = "crm.exit.gate.cache.mixin"
    _description = "Exit Gate Cache"

    # The fields whose change the gate reads; None: any field.
    _exit_gate_cached_fields = None

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        self.env.registry.clear_cache()
        return records

    def write(self, vals):
        res = super().write(vals)
        if self._exit_gate_cached_fields is None or set(self._exit_gate_cached_fields) & set(vals):
            self.env.registry.clear_cache()
        return res

    def unlink(self):
        res = super().unlink()
        self.env.registry.clear_cache()
        return res
