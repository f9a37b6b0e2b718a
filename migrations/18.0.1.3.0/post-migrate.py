from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Fill the duplicate match keys of every lead in bulk; give the seeded quiet-deal rule
    its delay of an hour (with none, base_automation checks every time-based rule of the
    database only every 4 hours)."""
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["crm.lead"]._fill_match_keys()
    rule = env.ref("crm_pipeline_optimizer.automation_stale_notification", raise_if_not_found=False)
    if rule and not rule.trg_date_range:
        rule.write({"trg_date_range": 1, "trg_date_range_type": "hour"})
