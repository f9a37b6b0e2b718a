from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Lead scoring arrives: learn from the history and score the open leads."""
    if not version:
        return
    from odoo.addons.crm_pipeline_optimizer.hooks import _post_init_score_leads

    _post_init_score_leads(api.Environment(cr, SUPERUSER_ID, {}))
