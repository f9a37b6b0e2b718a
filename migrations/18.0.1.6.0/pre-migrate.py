def migrate(cr, version):
    """The index of which leads the reader may see now starts with the salesperson (and
    is renamed for it); crm.lead's table initialisation creates it during this upgrade,
    with the salesperson's index of figures."""
    if not version:
        return
    cr.execute("DROP INDEX IF EXISTS crm_lead_company_user_scope_index")
