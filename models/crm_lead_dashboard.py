"""The covering indexes the dashboard reads leads and messages through."""

from odoo import models, tools
from odoo.tools import SQL

# The dashboard's figures select leads by stage (open pipeline), creation date or closing
# date, restricted by company, team and salesperson, and done activities by date: these
# indexes carry every column those figures read, so that PostgreSQL answers from the index
# alone instead of visiting one table page per row. (name, table, keys, included, where)
DASHBOARD_SCOPE = ("company_id", "team_id", "user_id")
CLOSED_FIGURE_COLUMNS = (
    "id",
    "stage_id",
    "active",
    "probability",
    "expected_revenue",
    "day_close",
    "lost_reason_id",
)
DASHBOARD_INDEXES = (
    # A manager reads every open opportunity (the whole index), a salesperson their own:
    # salesperson first.
    (
        "crm_lead_open_opportunity_user_stage_index",
        "crm_lead",
        ("user_id", "stage_id"),
        ("company_id", "team_id", "expected_revenue"),
        "active AND type = 'opportunity'",
    ),
    (
        "crm_lead_create_date_figures_index",
        "crm_lead",
        ("create_date",),
        (*DASHBOARD_SCOPE, "source_id", "type"),
        "",
    ),
    (
        "crm_lead_date_closed_figures_index",
        "crm_lead",
        ("date_closed",),
        (*DASHBOARD_SCOPE, *CLOSED_FIGURE_COLUMNS),
        "date_closed IS NOT NULL",
    ),
    # A salesperson's own leads: PostgreSQL reads their entries instead of everybody's of
    # the period. One index for both dates: each more index slows every rewrite of
    # crm_lead's rows.
    (
        "crm_lead_user_figures_index",
        "crm_lead",
        ("user_id", "create_date"),
        ("company_id", "team_id", "source_id", "type", "date_closed", *CLOSED_FIGURE_COLUMNS),
        "",
    ),
    # Which leads of activities and messages the reader may see, without reading the table
    # (a salesperson's own are read from the index above).
    (
        "crm_lead_company_user_scope_index",
        "crm_lead",
        ("company_id", "user_id"),
        ("id", "team_id"),
        "",
    ),
    # The forecast's open deals by expected closing (the deals past it counted from the
    # index alone), and its pushed deals. Not the score nor crm's probability: rewritten
    # every night, they would make every nightly update rewrite this index.
    (
        "crm_lead_open_opportunity_deadline_scope_index",
        "crm_lead",
        ("date_deadline",),
        ("stage_id", *DASHBOARD_SCOPE),
        "active AND type = 'opportunity'",
    ),
    (
        "crm_lead_open_opportunity_pushed_index",
        "crm_lead",
        ("deadline_pushed_days",),
        (),
        "active AND type = 'opportunity' AND deadline_push_count > 0",
    ),
    # Activities done: the messages that closed an activity, by date and by deal.
    (
        "mail_message_crm_lead_done_activity_index",
        "mail_message",
        ("date",),
        ("res_id", "author_id"),
        "model = 'crm.lead' AND mail_activity_type_id IS NOT NULL",
    ),
    (
        "mail_message_crm_lead_done_activity_res_index",
        "mail_message",
        ("res_id",),
        (),
        "model = 'crm.lead' AND mail_activity_type_id IS NOT NULL",
    ),
)


class CrmLead(models.Model):
    """Indexes of the dashboard's figures on crm_lead and mail_message."""

    _inherit = "crm.lead"

    def init(self):
        res = super().init()
        self._init_dashboard_indexes()
        return res

    def _init_dashboard_indexes(self):
        """The dashboard's covering indexes (DASHBOARD_INDEXES), unless they exist."""
        for name, table, keys, include, where in DASHBOARD_INDEXES:
            if tools.index_exists(self.env.cr, name):
                continue
            self.env.cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (%s)%s%s",
                    SQL.identifier(name),
                    SQL.identifier(table),
                    SQL(", ").join(map(SQL.identifier, keys)),
                    SQL(" INCLUDE (%s)", SQL(", ").join(map(SQL.identifier, include)))
                    if include
                    else SQL(),
                    SQL(" WHERE %s", SQL(where)) if where else SQL(),
                )
            )
