def migrate(cr, version):
    """date_closed's plain index gives way to the dashboard's covering index on closing
    dates, created when crm.lead's table is initialised during this upgrade."""
    if not version:
        return
    cr.execute("DROP INDEX IF EXISTS crm_lead__date_closed_index")
