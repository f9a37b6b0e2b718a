from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """The stage flow starts from the history crm tracked before this version."""
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    env["crm.lead.stage.visit"]._rebuild_stage_visits()
