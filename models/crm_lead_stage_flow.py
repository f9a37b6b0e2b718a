from odoo import fields, models
from odoo.tools import SQL

# A visit keeps the deal's company, team and salesperson of its time: who held the deal
# in the stage (crm's record rules on deals apply to visits through them).
VISIT_OWNER_FIELDS = ("company_id", "team_id", "user_id")


class CrmLead(models.Model):
    """Stage flow: each change of stage, and each loss, ends the deal's visit of its
    stage, kept as a row for the funnel and the velocity."""

    _inherit = "crm.lead"

    stage_visit_ids = fields.One2many("crm.lead.stage.visit", "lead_id", string="Stage Visits")

    def write(self, vals):
        if self and ("stage_id" in vals or vals.get("active") is False):
            self._end_stage_visits(vals)
        return super().write(vals)

    def _end_stage_visits(self, vals):
        """One INSERT for the write: the visits its deals end, before crm restarts their
        stage clock."""
        self.flush_recordset(
            ["stage_id", "active", "date_last_stage_update", "create_date", *VISIT_OWNER_FIELDS]
        )
        new_stage_id = vals.get("stage_id")
        lost = vals.get("active") is False and not new_stage_id
        Visit = self.env["crm.lead.stage.visit"]
        outcome = SQL("'lost'") if lost else Visit._outcome_sql("old", "new")
        self.env.execute_query(
            Visit._insert_sql(
                "lead",
                SQL("lead.stage_id"),
                SQL("COALESCE(lead.date_last_stage_update, lead.create_date)"),
                SQL("%s::timestamp", self.env.cr.now()),
                outcome,
                SQL(
                    """FROM crm_lead lead
                       JOIN crm_stage old ON old.id = lead.stage_id
                  LEFT JOIN crm_stage new ON new.id = %(new_stage)s
                      WHERE lead.id IN %(ids)s AND lead.active
                        AND (%(lost)s OR lead.stage_id IS DISTINCT FROM %(new_stage)s)
                        AND (%(lost)s OR new.id IS NOT NULL)""",
                    new_stage=new_stage_id or None,
                    ids=tuple(self._ids),
                    lost=lost,
                ),
            )
        )
