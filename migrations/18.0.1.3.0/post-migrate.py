from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    """Fill the duplicate match keys of every lead in bulk."""
    if not version:
        return
    api.Environment(cr, SUPERUSER_ID, {})["crm.lead"]._fill_match_keys()
