from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Scores stored before this version carry no signature in their details, and the
    learned factors count a stage or age no lost deal reached as 0 lost instead of
    unknown: relearn and rescore in the background (the scoring cron commits per batch),
    not inside the upgrade."""
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    cron = env.ref("crm_pipeline_optimizer.ir_cron_crm_lead_scoring", raise_if_not_found=False)
    if cron:
        cron._trigger()
