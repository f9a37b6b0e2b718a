from odoo import api, fields, models
from odoo.tools import SQL

VISIT_COLUMNS = SQL(
    "lead_id, stage_id, company_id, team_id, user_id, date_entered, date_left, days, outcome"
)

OUTCOMES = [
    ("forward", "Moved On"),
    ("back", "Moved Back"),
    ("won", "Won"),
    ("lost", "Lost"),
]


class CrmLeadStageVisit(models.Model):
    """A deal's finished stay in a stage: when it entered, when and how it left. The stay
    in its current stage is the deal itself (its stage and crm's last stage update)."""

    _name = "crm.lead.stage.visit"
    _description = "Stage Visit"
    _order = "date_left desc, id desc"
    _log_access = False

    lead_id = fields.Many2one("crm.lead", required=True, ondelete="cascade", index=True)
    stage_id = fields.Many2one("crm.stage", ondelete="cascade", index=True)
    # The deal's while it was in the stage: who held it, whose record rules apply.
    company_id = fields.Many2one("res.company", index=True)
    team_id = fields.Many2one("crm.team", index=True)
    user_id = fields.Many2one("res.users", string="Salesperson", index=True)
    date_entered = fields.Datetime(required=True, index=True)
    date_left = fields.Datetime(required=True, index=True)
    days = fields.Float(digits=(16, 2), help="Days in the stage, to the hour.")
    outcome = fields.Selection(OUTCOMES, required=True)
    is_without_exit_criteria = fields.Boolean(
        string="Moved On Without Criteria",
        help="The deal left the stage forward without meeting all its exit checks.",
    )

    @api.model
    def _mark_without_exit_criteria(self, leads):
        """The visits `leads` ended in this transaction's write by moving on without their
        stage's exit checks (one UPDATE)."""
        self.env.execute_query(
            SQL(
                """UPDATE crm_lead_stage_visit SET is_without_exit_criteria = TRUE
                    WHERE lead_id IN %s AND date_left = %s::timestamp""",
                tuple(leads.ids),
                self.env.cr.now(),
            )
        )

    @api.model
    def _insert_sql(self, lead, stage, entered, left, outcome, source):
        """INSERT of the visits of the `lead` rows of `source` (SQL from … where …): their
        `stage` from `entered` to `left`, ended by `outcome` (SQL expressions)."""
        return SQL(
            """INSERT INTO crm_lead_stage_visit (%(columns)s)
               SELECT %(lead)s.id, %(stage)s, %(lead)s.company_id, %(lead)s.team_id,
                      %(lead)s.user_id, %(entered)s, %(left)s,
                      extract(epoch FROM %(left)s - %(entered)s) / 86400, %(outcome)s
               %(source)s""",
            columns=VISIT_COLUMNS,
            lead=SQL.identifier(lead),
            stage=stage,
            entered=entered,
            left=left,
            outcome=outcome,
            source=source,
        )

    @api.model
    def _outcome_sql(self, old_stage, new_stage):
        """SQL outcome of leaving `old_stage` for `new_stage` (aliases of crm_stage rows):
        won when the new stage is, else forward or back in the stages' order."""
        return SQL(
            """CASE WHEN %(new)s.is_won THEN 'won'
                    WHEN (%(new)s.sequence, %(new)s.id) > (%(old)s.sequence, %(old)s.id)
                    THEN 'forward' ELSE 'back' END""",
            old=SQL.identifier(old_stage),
            new=SQL.identifier(new_stage),
        )

    @api.model
    def _rebuild_stage_visits(self):
        """Count the finished visits again from crm's history: each tracked change of stage
        ends a visit (from the change before, or the creation), each lost deal ends the
        visit of its stage at its closing. What the writes keep equals this."""
        self.env.flush_all()
        stage_field = self.env["ir.model.fields"]._get("crm.lead", "stage_id")
        self.env.cr.execute("DELETE FROM crm_lead_stage_visit")
        changes = SQL(
            """SELECT message.res_id AS lead_id, value.old_value_integer AS old_stage_id,
                      value.new_value_integer AS new_stage_id, message.date,
                      lag(message.date) OVER (PARTITION BY message.res_id
                                                  ORDER BY message.date, value.id)
                          AS previous_date
                 FROM mail_tracking_value value
                 JOIN mail_message message ON message.id = value.mail_message_id
                WHERE value.field_id = %s AND message.model = 'crm.lead'""",
            stage_field.id,
        )
        self.env.execute_query(
            self._insert_sql(
                "lead",
                SQL("changes.old_stage_id"),
                SQL("COALESCE(changes.previous_date, lead.create_date)"),
                SQL("changes.date"),
                self._outcome_sql("old", "new"),
                SQL(
                    """FROM (%s) changes
                       JOIN crm_lead lead ON lead.id = changes.lead_id
                       JOIN crm_stage old ON old.id = changes.old_stage_id
                       JOIN crm_stage new ON new.id = changes.new_stage_id""",
                    changes,
                ),
            )
        )
        self.env.execute_query(
            self._insert_sql(
                "lead",
                SQL("lead.stage_id"),
                SQL("COALESCE(lead.date_last_stage_update, lead.create_date)"),
                SQL("lead.date_closed"),
                SQL("'lost'"),
                SQL(
                    """FROM crm_lead lead
                      WHERE NOT lead.active AND lead.probability = 0
                        AND lead.date_closed IS NOT NULL AND lead.stage_id IS NOT NULL"""
                ),
            )
        )
        self.invalidate_model()
