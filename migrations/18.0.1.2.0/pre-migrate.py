from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Stale deals arrive: no lead is escalated yet."""
    if not version:
        return
    from odoo.addons.crm_pipeline_optimizer.hooks import _pre_init_escalation_columns

    _pre_init_escalation_columns(api.Environment(cr, SUPERUSER_ID, {}))
