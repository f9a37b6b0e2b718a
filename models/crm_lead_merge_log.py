"""What a merge moved and changed, so that it can be undone."""

import json
from datetime import timedelta

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from .res_company import DEFAULT_MERGE_UNDO_DAYS

# Fields of a merged lead's row that decide whether a user may have merged it (their
# record rules on crm.lead read these).
RULE_FIELDS = ("user_id", "team_id", "company_id", "type", "active")


class CrmLeadMergeLog(models.Model):
    """One merge: the records it deleted (their rows, as they were), where each message,
    attachment, activity, meeting, follower and reference came from, and the kept
    record's values before. Undoing puts every merged record back with the same id."""

    _name = "crm.lead.merge.log"
    _description = "Lead Merge"
    _order = "id desc"
    _rec_name = "master_id"

    master_id = fields.Many2one(
        "crm.lead", string="Kept Record", ondelete="set null", index=True, readonly=True
    )
    company_id = fields.Many2one("res.company", readonly=True, index=True)
    user_id = fields.Many2one("res.users", string="Merged By", readonly=True)
    merged_count = fields.Integer(string="Records Merged", readonly=True)
    merged_names = fields.Text(string="Merged Records", readonly=True)
    state = fields.Selection(
        [("merged", "Merged"), ("undone", "Undone")], default="merged", readonly=True
    )
    undo_deadline = fields.Datetime(
        string="Undo Until",
        compute="_compute_undo_deadline",
        help="The merge can be undone until then (Settings: Undo Merges Within).",
    )
    date_undone = fields.Datetime(string="Undone On", readonly=True)
    undone_by_id = fields.Many2one("res.users", readonly=True)
    summary_message_id = fields.Many2one("mail.message", ondelete="set null", readonly=True)
    journal = fields.Json(readonly=True)

    @api.depends("create_date", "company_id.merge_undo_days")
    def _compute_undo_deadline(self):
        for log in self:
            days = (log.company_id or self.env.company).merge_undo_days or DEFAULT_MERGE_UNDO_DAYS
            log.undo_deadline = (log.create_date or fields.Datetime.now()) + timedelta(days=days)

    # ------------------------------------------------------------------ recording
    @api.model
    def _record(self, master, others, journal):
        # sudo: the journal is readable by sales administrators only, written by any merge.
        return self.sudo().create(
            {
                "master_id": master.id,
                "company_id": master.company_id.id,
                "user_id": self.env.user.id,
                "merged_count": len(others),
                "merged_names": "\n".join(f"{lead.name} (#{lead.id})" for lead in others),
                "journal": journal,
            }
        )

    # ------------------------------------------------------------------ undo
    def _is_undoable(self):
        self.ensure_one()
        return bool(
            self.state == "merged" and self.master_id and fields.Datetime.now() < self.undo_deadline
        )

    def action_undo(self):
        self.ensure_one()
        self._undo()
        return True

    def _undo(self):
        """Brings back every merged record as it was (same id), moves back what came from
        it, and restores the kept record's fields the merge changed, unless they changed
        since. All or nothing."""
        self.ensure_one()
        # sudo: the journal is for sales administrators; whoever could have merged these
        # records may undo the merge (checked in the user's own rights below).
        Log = self.sudo()
        Log._check_undoable()
        Log._check_user_may_undo(self.env)
        journal = Log.journal
        master = Log.master_id
        with self.env.cr.savepoint():
            self.env.flush_all()
            try:
                Log._restore_rows(journal)
            except psycopg2.IntegrityError as error:
                raise UserError(
                    self.env._(
                        "This merge can no longer be undone: a record the merged records "
                        "point to was deleted since (%(detail)s).",
                        detail=error.diag.message_detail or error.pgerror,
                    )
                ) from error
            Log._move_back(journal, master.id)
            self.env.invalidate_all()
            Log._restore_master(journal, master)
            Log.write(
                {
                    "state": "undone",
                    "date_undone": fields.Datetime.now(),
                    "undone_by_id": self.env.user.id,
                }
            )
            Log._post_undone(journal, master)
        return True

    def _check_undoable(self):
        if self.state != "merged":
            raise UserError(self.env._("This merge was already undone."))
        if not self.master_id:
            raise UserError(
                self.env._("This merge can no longer be undone: the record kept was deleted since.")
            )
        if fields.Datetime.now() >= self.undo_deadline:
            raise UserError(
                self.env._(
                    "This merge can no longer be undone: merges can be undone for "
                    "%(days)s days, until %(date)s.",
                    days=(self.company_id or self.env.company).merge_undo_days,
                    date=fields.Datetime.to_string(self.undo_deadline),
                )
            )
        company_ids = {row["company_id"] for row in self.journal["leads"] if row["company_id"]}
        existing = self.env["res.company"].sudo().browse(company_ids).exists()
        if len(existing) != len(company_ids):
            raise UserError(
                self.env._(
                    "This merge can no longer be undone: the company of a merged record "
                    "was deleted since."
                )
            )

    def _check_user_may_undo(self, env):
        """Whoever undoes must be allowed to change the kept record and every merged record
        as it was (its salesperson, team and company) under their own record rules."""
        self.master_id.with_env(env).check_access("write")
        Lead = env["crm.lead"].with_context(active_test=False)
        domain = env["ir.rule"]._compute_domain("crm.lead", "write")
        if not domain:
            return
        for row in self.journal["leads"]:
            lead = Lead.new({fname: row.get(fname) for fname in RULE_FIELDS})
            if not lead.filtered_domain(domain):
                raise AccessError(
                    env._(
                        "You may not undo this merge: %(lead)s was not a record you may change.",
                        lead=row.get("name"),
                    )
                )

    def _restore_rows(self, journal):
        cr = self.env.cr
        cr.execute(
            SQL(
                """INSERT INTO crm_lead
                   SELECT * FROM jsonb_populate_recordset(NULL::crm_lead, %s::jsonb)""",
                json.dumps(journal["leads"]),
            )
        )
        for link in journal["links"]:
            cr.execute(
                SQL(
                    """INSERT INTO %(table)s (%(own)s, %(lead)s)
                       SELECT v.own, v.lead FROM (VALUES %(rows)s) AS v(own, lead)
                        WHERE EXISTS (SELECT FROM %(other)s o WHERE o.id = v.own)
                       ON CONFLICT DO NOTHING""",
                    table=SQL.identifier(link["table"]),
                    own=SQL.identifier(link["own"]),
                    lead=SQL.identifier(link["lead"]),
                    other=SQL.identifier(link["other"]),
                    rows=SQL(", ").join(SQL("(%s, %s)", own, lead) for own, lead in link["rows"]),
                )
            )
        if journal["exclusions"]:
            cr.execute(
                SQL(
                    """INSERT INTO crm_lead_duplicate_exclusion
                       SELECT x.* FROM jsonb_populate_recordset(
                                NULL::crm_lead_duplicate_exclusion, %s::jsonb) x
                        WHERE EXISTS (SELECT FROM crm_lead WHERE id = x.lead_low_id)
                          AND EXISTS (SELECT FROM crm_lead WHERE id = x.lead_high_id)
                       ON CONFLICT DO NOTHING""",
                    json.dumps(journal["exclusions"]),
                )
            )

    def _move_back(self, journal, master_id):
        """Moves back what came from each merged record and is still on the kept one."""
        cr = self.env.cr
        for table, column, key in (
            ("mail_message", "subject", "messages"),
            ("ir_attachment", "name", "attachments"),
        ):
            if journal[key]:
                cr.execute(
                    SQL(
                        """UPDATE %(table)s t SET res_id = v.lead, %(column)s = v.old
                             FROM (VALUES %(rows)s) AS v(id, lead, old)
                            WHERE t.id = v.id AND t.res_id = %(master)s""",
                        table=SQL.identifier(table),
                        column=SQL.identifier(column),
                        rows=SQL(", ").join(
                            SQL("(%s, %s, %s::varchar)", *row) for row in journal[key]
                        ),
                        master=master_id,
                    )
                )
        moved_by_res_id = [
            ("mail_activity", "res_id", journal["activities"]),
            ("calendar_event", "res_id", journal["events"]),
            ("mail_followers", "res_id", journal["followers_moved"]),
            *(
                (reference["table"], reference["column"], reference["rows"])
                for reference in journal["references"]
            ),
        ]
        for table, column, rows in moved_by_res_id:
            if rows:
                cr.execute(
                    SQL(
                        """UPDATE %(table)s t SET %(column)s = v.lead
                             FROM (VALUES %(rows)s) AS v(id, lead)
                            WHERE t.id = v.id AND t.%(column)s = %(master)s""",
                        table=SQL.identifier(table),
                        column=SQL.identifier(column),
                        rows=SQL(", ").join(SQL("(%s, %s)", *row) for row in rows),
                        master=master_id,
                    )
                )
        self._move_back_followers(journal)
        for link in journal["links_added"]:
            cr.execute(
                SQL(
                    "DELETE FROM %s WHERE %s = %s AND %s IN %s",
                    SQL.identifier(link["table"]),
                    SQL.identifier(link["lead"]),
                    master_id,
                    SQL.identifier(link["own"]),
                    tuple(link["rows"]),
                )
            )

    def _move_back_followers(self, journal):
        cr = self.env.cr
        if journal["follower_subtypes_added"]:
            cr.execute(
                SQL(
                    """DELETE FROM mail_followers_mail_message_subtype_rel
                        WHERE (mail_followers_id, mail_message_subtype_id) IN (%s)""",
                    SQL(", ").join(
                        SQL("(%s, %s)", *pair) for pair in journal["follower_subtypes_added"]
                    ),
                )
            )
        removed = journal["followers_removed"]
        if not removed:
            return
        cr.execute(
            SQL(
                """INSERT INTO mail_followers (id, res_model, res_id, partner_id)
                   SELECT v.id, 'crm.lead', v.res_id, v.partner_id
                     FROM (VALUES %s) AS v(id, partner_id, res_id)
                    WHERE EXISTS (SELECT FROM res_partner p WHERE p.id = v.partner_id)
                   ON CONFLICT DO NOTHING""",
                SQL(", ").join(SQL("(%s, %s, %s)", *row[:3]) for row in removed),
            )
        )
        subtypes = [(row[0], subtype_id) for row in removed for subtype_id in row[3]]
        if subtypes:
            cr.execute(
                SQL(
                    """INSERT INTO mail_followers_mail_message_subtype_rel
                                (mail_followers_id, mail_message_subtype_id)
                       SELECT v.follower, v.subtype FROM (VALUES %s) AS v(follower, subtype)
                        WHERE EXISTS (SELECT FROM mail_followers f WHERE f.id = v.follower)
                       ON CONFLICT DO NOTHING""",
                    SQL(", ").join(SQL("(%s, %s)", *pair) for pair in subtypes),
                )
            )

    def _restore_master(self, journal, master):
        """The kept record's fields the merge filled or changed get their value back,
        unless someone changed them since; the tags the merge added go."""
        master = master.sudo()
        before, after = journal["master_before"], journal["master_after"]
        values = {}
        for fname, old_value in before.items():
            if fname in master._fields and master._merge_stored_value(fname) == after.get(fname):
                values[fname] = old_value
        tags = master.tag_ids.browse(journal["tags_added"]) & master.tag_ids
        if tags:
            values["tag_ids"] = [(3, tag.id) for tag in tags]
        if values:
            master.write(values)

    def _post_undone(self, journal, master):
        restored = self.env["crm.lead"].browse([row["id"] for row in journal["leads"]])
        master.message_post(
            body=Markup("<p>%s</p>")
            % self.env._(
                "Merge undone by %(user)s: %(count)s records back as they were (%(names)s).",
                user=self.env.user.name,
                count=len(restored),
                names=", ".join(restored.mapped("display_name")),
            ),
            subtype_xmlid="mail.mt_note",
        )
        restored._message_log_batch(
            bodies=dict.fromkeys(
                restored.ids,
                self.env._(
                    "Restored: the merge into %(lead)s was undone.", lead=master.display_name
                ),
            )
        )
