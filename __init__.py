from . import models


def _pre_init_keep_stars(env):
    """Stars already on leads were set by hand: flag them before the module's fields are
    computed, so that scoring does not replace them."""
    env.cr.execute(
        """ALTER TABLE crm_lead ADD COLUMN IF NOT EXISTS is_priority_manual BOOLEAN;
           UPDATE crm_lead SET is_priority_manual = TRUE WHERE COALESCE(priority, '0') != '0'"""
    )
    _pre_init_escalation_columns(env)


def _pre_init_escalation_columns(env):
    """No lead is escalated yet: make the column, so that Odoo does not compute the field
    for every lead of a large database, one by one, at install."""
    env.cr.execute("ALTER TABLE crm_lead ADD COLUMN IF NOT EXISTS is_escalated BOOLEAN")


def _post_init_score_leads(env):
    """Learn from the history the database already has and score its open leads."""
    env["crm.lead"]._update_all_scores()
