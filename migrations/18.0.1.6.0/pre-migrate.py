def migrate(cr, version):
    """The index of which leads the reader may see now starts with the salesperson (and
    is renamed for it); crm.lead's table initialisation creates it during this upgrade,
    with the salesperson's indexes by creation and closing date."""
    if not version:
        return
    cr.execute("DROP INDEX IF EXISTS crm_lead_company_user_scope_index")
