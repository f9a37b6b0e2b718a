from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Duplicate match keys arrive: make their columns, so that Odoo does not compute them
    lead by lead (stamping write_date); post-migrate fills them in bulk."""
    if not version:
        return
    from odoo.addons.crm_pipeline_optimizer.hooks import _pre_init_match_key_columns

    _pre_init_match_key_columns(api.Environment(cr, SUPERUSER_ID, {}))
