"""Install and uninstall hooks."""

from odoo.tools import SQL

from .models.crm_lead_dashboard import DASHBOARD_INDEXES


def _pre_init_prepare_leads(env):
    """Before the module's fields exist: keep the stars given by hand, and make the columns
    of the stored computed fields so that Odoo does not compute them lead by lead through
    the ORM (which would also stamp every lead's write_date, the 'last update' that stale
    deals read). The post-init hook fills them in bulk."""
    _pre_init_adopt_kept_stages(env)
    _pre_init_keep_stars(env)
    _pre_init_escalation_columns(env)
    _pre_init_match_key_columns(env)
    env.cr.execute(
        """ALTER TABLE crm_lead ADD COLUMN IF NOT EXISTS score INTEGER,
                               ADD COLUMN IF NOT EXISTS score_rule INTEGER,
                               ADD COLUMN IF NOT EXISTS score_learned INTEGER,
                               ADD COLUMN IF NOT EXISTS score_details JSONB"""
    )


# A stage the module seeded and leads still use outlives an uninstall under this external id,
# and is the module's again at the next install (its seed is not created a second time).
KEPT_STAGE_MODULE = "__export__"
KEPT_STAGE_PREFIX = "crm_pipeline_optimizer_"


def _pre_init_adopt_kept_stages(env):
    env.cr.execute(
        SQL(
            """UPDATE ir_model_data SET module = 'crm_pipeline_optimizer',
                      name = substr(name, %s)
                WHERE module = %s AND model = 'crm.stage' AND name LIKE %s""",
            len(KEPT_STAGE_PREFIX) + 1,
            KEPT_STAGE_MODULE,
            f"{KEPT_STAGE_PREFIX}%",
        )
    )


def _uninstall_keep_stages_in_use(env):
    """The stages the module seeded that leads still use are kept (the leads keep their
    stage): their external id moves out of the module, so the uninstall does not delete
    them."""
    env.cr.execute(
        SQL(
            """UPDATE ir_model_data SET module = %s, name = %s || name
                WHERE module = 'crm_pipeline_optimizer' AND model = 'crm.stage'
                  AND res_id IN (
                      SELECT stage_id FROM crm_lead
                       WHERE stage_id IS NOT NULL
                         AND id NOT IN (SELECT res_id FROM ir_model_data
                                         WHERE module = 'crm_pipeline_optimizer'
                                           AND model = 'crm.lead'))""",
            KEPT_STAGE_MODULE,
            KEPT_STAGE_PREFIX,
        )
    )


def _pre_init_keep_stars(env):
    """Stars already on leads were set by hand: flag them before the module's fields are
    computed, so that scoring does not replace them."""
    env.cr.execute(
        """ALTER TABLE crm_lead ADD COLUMN IF NOT EXISTS is_priority_manual BOOLEAN;
           UPDATE crm_lead SET is_priority_manual = TRUE WHERE COALESCE(priority, '0') != '0'"""
    )


def _pre_init_escalation_columns(env):
    """No lead is escalated yet: make the column, so that Odoo does not compute the field
    for every lead of a large database, one by one, at install."""
    env.cr.execute("ALTER TABLE crm_lead ADD COLUMN IF NOT EXISTS is_escalated BOOLEAN")


def _pre_init_match_key_columns(env):
    """The duplicate match keys are filled in bulk by the post-init hook."""
    env.cr.execute(
        """ALTER TABLE crm_lead ADD COLUMN IF NOT EXISTS email_match_key VARCHAR,
                               ADD COLUMN IF NOT EXISTS phone_match_key VARCHAR,
                               ADD COLUMN IF NOT EXISTS company_match_key VARCHAR,
                               ADD COLUMN IF NOT EXISTS contact_match_key VARCHAR,
                               ADD COLUMN IF NOT EXISTS domain_match_key VARCHAR"""
    )


# Above this many leads, the scores and match keys of the leads already there are computed
# by the scheduler after the install (a batch a transaction) rather than by the install.
INSTALL_INLINE_LEADS = 50000


def _post_init_score_leads(env):
    """Learn from the history the database already has and score its open leads; compute
    the duplicate match keys of every lead: now, or right after the install, in the
    background, on a large database (an administrator installing on a million leads
    should not wait ten minutes)."""
    Lead = env["crm.lead"]
    env.cr.execute("SELECT count(*) > %s FROM crm_lead", (INSTALL_INLINE_LEADS,))
    if env.cr.fetchone()[0]:
        Lead._trigger_score_recompute()
        Lead._defer_match_keys()
    else:
        Lead._update_all_scores()
        Lead._fill_match_keys()
    # The stage flow of the history crm tracked before the install.
    env["crm.lead.stage.visit"]._rebuild_stage_visits()


def _uninstall_drop_indexes(env):
    """Indexes and triggers the module added on crm's and mail's tables: the stale
    selection's, the dashboard's (and date_closed's of versions before 18.0.1.5.0), the
    similar company names' and the triggers that keep the dashboard's figures."""
    names = [
        "crm_lead_open_opportunity_write_date_index",
        "crm_lead__date_closed_index",
        "crm_lead_contact_company_number_index",
        *(index[0] for index in DASHBOARD_INDEXES),
    ]
    env.cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL(", ").join(map(SQL.identifier, names))))
    env["crm.pipeline.figure"]._uninstall_figures()
    _uninstall_keep_stages_in_use(env)
