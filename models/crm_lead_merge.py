"""The lossless merge of leads and opportunities."""

from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.exceptions import UserError
from odoo.tools import SQL

from .crm_lead import QUALIFICATION_FIELDS

# crm's wizards set it to merge through the module's merge (see merge_opportunity).
ROUTE_MERGE_CONTEXT_KEY = "crm_pipeline_merge"
# What restoring a lost record kept by a merge changes, for the undo to give it back.
REVIVED_FIELDS = ("active", "lost_reason_id", "probability", "automated_probability")


class CrmLead(models.Model):
    """Merge: nothing lost, never across companies, at most one won deal."""

    _inherit = "crm.lead"

    merge_log_ids = fields.One2many(
        "crm.lead.merge.log", "master_id", string="Merges", groups="sales_team.group_sale_manager"
    )
    undoable_merge_log_id = fields.Many2one(
        "crm.lead.merge.log",
        compute="_compute_undoable_merge_log_id",
        help="The last merge into this record that can still be undone.",
    )

    @api.depends_context("uid")
    def _compute_undoable_merge_log_id(self):
        # sudo: the merge journal is for sales administrators; whether the reader may undo
        # it is checked on the journal's own terms.
        logs = (
            self.env["crm.lead.merge.log"]
            .sudo()
            .search(
                [("master_id", "in", self.ids), ("state", "=", "merged")],
                order="id desc",
            )
        )
        for lead in self:
            log = next((log for log in logs if log.master_id == lead), logs.browse())
            lead.undoable_merge_log_id = log if log and log._is_undoable() else False

    def action_undo_merge(self):
        """Undoes the last merge into this record that can be undone."""
        self.ensure_one()
        self.check_access("write")
        log = self.undoable_merge_log_id
        if not log:
            raise UserError(self.env._("No merge into this record can be undone."))
        log.with_env(self.env)._undo()
        return True

    def _merge_get_fields(self):
        # Qualification facts: the first lead that has one gives it (a ticked box wins).
        return super()._merge_get_fields() + sorted(QUALIFICATION_FIELDS)

    def _merge_default_master(self):
        """The lead the others merge into: a won deal if there is one, else the open one crm
        would keep (opportunity before lead, furthest stage, highest probability, newest),
        else the lost one it would keep."""
        ordered = self._sort_by_confidence_level(reverse=True)
        won = ordered.filtered(lambda lead: lead.stage_id.is_won)
        # crm ranks a lost opportunity with the open records; an open one is kept first.
        return (won or ordered.filtered("active") or ordered)[:1]

    def _check_merge(self, master):
        """Refuses a merge that would mix companies, two sales, or bury an open deal."""
        if len(self) < 2:
            raise UserError(self.env._("Select at least two leads or opportunities to merge."))
        if master not in self:
            raise UserError(self.env._("The record to keep must be one of the records merged."))
        # A record without a company belongs to none: it may join one company's records.
        if len(self.company_id) > 1:
            raise UserError(
                self.env._(
                    "Leads of different companies are never merged: %(leads)s.",
                    leads=", ".join(
                        f"{lead.display_name} ({lead.company_id.name or '—'})" for lead in self
                    ),
                )
            )
        won = self.filtered(lambda lead: lead.stage_id.is_won)
        if len(won) > 1:
            raise UserError(
                self.env._(
                    "Two won deals are two sales: they are not merged (%(deals)s).",
                    deals=", ".join(won.mapped("display_name")),
                )
            )
        if won and won != master:
            raise UserError(
                self.env._(
                    "A won deal is the record kept by a merge: keep %(deal)s.", deal=won.name
                )
            )
        if not master.active and (self - master).filtered("active"):
            raise UserError(
                self.env._(
                    "An open lead is not merged into a lost one: keep an open record, or "
                    "restore %(lead)s first.",
                    lead=master.name,
                )
            )
        self.check_access("write")

    def merge_opportunity(self, user_id=False, team_id=False, auto_unlink=True):
        """crm's wizards (conversion with merge, mass conversion) merge through the
        module's merge: they ask for it in the context, crm's own callers keep crm's."""
        if not self.env.context.get(ROUTE_MERGE_CONTEXT_KEY):
            return super().merge_opportunity(
                user_id=user_id, team_id=team_id, auto_unlink=auto_unlink
            )
        # crm's callers keep crm's choice of the record kept: a lost opportunity ranks
        # with the open records, and is brought back to life by the merge.
        ordered = self._sort_by_confidence_level(reverse=True)
        master = ordered.filtered(lambda lead: lead.stage_id.is_won)[:1] or ordered[:1]
        return self._merge_into(
            master,
            user_id=user_id,
            team_id=team_id,
            delete_merged=auto_unlink,
            revive_lost_master=True,
        )

    def _merge_into(
        self, master, user_id=False, team_id=False, delete_merged=True, revive_lost_master=False
    ):
        """Merges these leads into `master`, which they must include, and deletes the
        others: their messages, activities, attachments, followers, calendar events and
        every record pointing at them move to `master`; its empty fields are filled from
        the others (crm's rules); a summary in its chatter says what came from where. What
        the merge moved and changed is kept in a crm.lead.merge.log, so that it can be
        undone. All or nothing: a failure leaves every record as it was. Without
        `delete_merged` (crm's auto_unlink), the caller deletes the merged records, emptied
        of their history, when it is done with them. With `revive_lost_master`, a lost
        record kept for open ones is restored first."""
        with self.env.cr.savepoint():
            revived = {}
            if revive_lost_master and not master.active and (self - master).filtered("active"):
                revived = master._merge_values_before(REVIVED_FIELDS)
                master.action_unarchive()
            self._check_merge(master)
            others = (self - master)._sort_by_confidence_level(reverse=True)
            values = (master + others)._merge_data(master._merge_get_fields())
            if master.active:
                # crm takes a lost record's reason when the kept one has no probability;
                # an open record stays open, without a lost reason.
                values.pop("lost_reason_id", None)
            provenance = master._merge_provenance(others, values)
            values.update(master._merge_assignment_values(values, user_id, team_id))
            values.update(master._merge_priority_values(others, values))
            journal = master._merge_snapshot(others)
            journal["master_before"] = {**master._merge_values_before(values), **revived}
            journal["tags_added"] = (others.tag_ids - master.tag_ids).ids
            moved = master._merge_move_dependencies(others, journal)
            master.write(values)
            journal["master_after"] = master._merge_values_before({**values, **revived})
            log = self.env["crm.lead.merge.log"]._record(master, others, journal)
            master._merge_post_summary(others, provenance, moved, log)
            if delete_merged:
                # sudo: the user may write every merged record (checked above); crm also
                # deletes the merged records as superuser, whatever the unlink rights.
                others.sudo().unlink()
        return master

    def _merge_values_before(self, values):
        """{field: value as stored} of `self` for the fields the merge writes."""
        self.ensure_one()
        return {
            fname: self._merge_stored_value(fname)
            for fname in values
            if self._fields[fname].type not in ("one2many", "many2many")
        }

    def _merge_stored_value(self, fname):
        """The value of `fname` as the journal keeps it (JSON) and write() takes back."""
        field = self._fields[fname]
        if field.type == "date":
            return fields.Date.to_string(self[fname])
        if field.type == "datetime":
            return fields.Datetime.to_string(self[fname])
        return field.convert_to_write(self[fname], self)

    def _merge_provenance(self, others, values):
        """[(field label, value shown, source lead)] for the fields of `self` that were
        empty and are filled from another lead."""
        self.ensure_one()
        provenance = []
        for fname, value in values.items():
            field = self._fields[fname]
            if self[fname] or not value or field.type in ("one2many", "many2many", "html"):
                continue
            source = next((lead for lead in others if lead[fname]), None)
            if source:
                shown = source[fname].display_name if field.type == "many2one" else source[fname]
                if field.type == "selection":
                    shown = dict(field._description_selection(self.env)).get(shown, shown)
                provenance.append((field._description_string(self.env), shown, source))
        added_tags = others.tag_ids - self.tag_ids
        if added_tags:
            label = self._fields["tag_ids"]._description_string(self.env)
            provenance.append((label, ", ".join(added_tags.mapped("name")), others))
        return provenance

    def _merge_assignment_values(self, values, user_id, team_id):
        """Salesperson and team chosen for the merged record, and a stage of that team."""
        self.ensure_one()
        assignment = {}
        if user_id:
            assignment["user_id"] = user_id
        if team_id:
            assignment["team_id"] = team_id
        team = self.env["crm.team"].browse(assignment.get("team_id", values.get("team_id")))
        if team and self.stage_id.team_id and self.stage_id.team_id != team:
            stage = self.env["crm.stage"].search(
                ["|", ("team_id", "=", team.id), ("team_id", "=", False)],
                order="sequence, id",
                limit=1,
            )
            assignment["stage_id"] = stage.id
        for fname in ("user_id", "team_id", "stage_id"):
            if fname in values and values[fname] == self[fname].id and fname not in assignment:
                values.pop(fname)
        return assignment

    def _merge_priority_values(self, others, values):
        """Stars: the highest given by hand wins; stars that follow the score stay
        automatic (the score of the merged record decides)."""
        self.ensure_one()
        values.pop("priority", None)
        manual = (self + others).filtered("is_priority_manual")
        best = max(manual.mapped("priority"), default=False)
        if best and best > (self.priority or "0"):
            return {"priority": best, "is_priority_manual": True}
        return {}

    def _merge_snapshot(self, others):
        """What deleting `others` takes away and an undo puts back: their rows, the rows
        of their many2many links (theirs and other models' to them) and their
        not-a-duplicate marks."""
        self.env.flush_all()
        other_ids = tuple(others.ids)
        links = []
        for table, own, lead, other_table in self._merge_lead_links():
            rows = self.env.execute_query(
                SQL(
                    "SELECT %s, %s FROM %s WHERE %s IN %s",
                    SQL.identifier(own),
                    SQL.identifier(lead),
                    SQL.identifier(table),
                    SQL.identifier(lead),
                    other_ids,
                )
            )
            if rows:
                links.append(
                    {"table": table, "own": own, "lead": lead, "other": other_table, "rows": rows}
                )
        return {
            "leads": self._merge_rows("crm_lead", SQL("id IN %s", other_ids)),
            "links": links,
            "exclusions": self._merge_rows(
                "crm_lead_duplicate_exclusion",
                SQL("lead_low_id IN %s OR lead_high_id IN %s", other_ids, other_ids),
            ),
        }

    def _merge_rows(self, table, condition):
        """The rows of `table` matching `condition`, as JSON, every column included."""
        return [
            row
            for (row,) in self.env.execute_query(
                SQL(
                    "SELECT to_jsonb(t) FROM %s t WHERE %s ORDER BY t.id",
                    SQL.identifier(table),
                    condition,
                )
            )
        ]

    def _merge_lead_links(self):
        """[(relation table, column of the other side, column of the lead, table of the
        other side)] of every stored many2many field to or of crm.lead, in any installed
        module."""
        links = set()
        for model in self.env.registry.values():
            if model._abstract or model._transient or not model._auto:
                continue
            for field in model._fields.values():
                if field.type != "many2many" or not field.store:
                    continue
                if model._name == self._name:
                    other = self.env[field.comodel_name]._table
                    links.add((field.relation, field.column2, field.column1, other))
                elif field.comodel_name == self._name:
                    links.add((field.relation, field.column1, field.column2, model._table))
        return sorted(links)

    def _merge_move_dependencies(self, others, journal):
        """Moves what hangs on `others` to `self` in a few set-based statements, noting in
        `journal` where each row came from; returns {kind: number of rows moved}."""
        self.ensure_one()
        self.env.flush_all()
        other_ids = tuple(others.ids)
        journal["messages"] = self._merge_move_messages(others)
        journal["attachments"] = self._merge_move_attachments(others)
        journal.update(self._merge_move_followers(other_ids))
        journal["activities"] = self._merge_move_res_id(
            "mail_activity", SQL("res_model = 'crm.lead' AND res_id IN %s", other_ids)
        )
        # A meeting of a merged opportunity is the kept one's, as crm's merge moves it.
        journal["events"] = self._merge_move_res_id(
            "calendar_event",
            SQL(
                "(res_model = 'crm.lead' AND res_id IN %s) OR opportunity_id IN %s",
                other_ids,
                other_ids,
            ),
        )
        journal["references"], journal["links_added"] = self._merge_move_references(other_ids)
        self._merge_invalidate(journal)
        return {
            "messages": len(journal["messages"]),
            "attachments": len(journal["attachments"]),
            "followers": len(journal["followers_moved"]),
            "activities": len(journal["activities"]),
        }

    def _merge_invalidate(self, journal):
        """Drops from the cache what the moves changed behind the ORM. The merged leads'
        own values stay cached, as after crm's merge: crm's mass conversion reads them
        once they are deleted."""
        touched = {"mail.message", "ir.attachment", "mail.activity", "mail.followers"}
        touched |= {"calendar.event"}
        tables = {reference["table"] for reference in journal["references"]}
        tables |= {link["table"] for link in journal["links_added"]}
        touched |= {model._name for model in self.env.registry.values() if model._table in tables}
        for model_name in touched - {self._name}:
            self.env[model_name].invalidate_model()
        self.invalidate_model(
            [
                name
                for name, field in self._fields.items()
                if field.type in ("one2many", "many2many")
            ]
        )

    def _merge_move_res_id(self, table, attached):
        """Points the rows of `table` attached to the merged leads (SQL condition) at
        `self`; returns [(row id, res_id before)]."""
        return self.env.execute_query(
            SQL(
                """UPDATE %(table)s moved SET res_id = %(master)s
                     FROM (SELECT id, res_id FROM %(table)s WHERE %(attached)s) old
                    WHERE moved.id = old.id
                RETURNING moved.id, old.res_id""",
                table=SQL.identifier(table),
                attached=attached,
                master=self.id,
            )
        )

    def _merge_move_messages(self, others):
        """Messages move with their tracking values and notifications, their subject saying
        which record they came from, as crm's merge writes it. Returns [(message id, lead
        it came from, subject before)]."""
        mark = "\x1f"
        labels = SQL(", ").join(
            SQL(
                "(%s, %s, %s)",
                lead.id,
                self.env._("From %(source_name)s", source_name=lead.name),
                self.env._(
                    "From %(source_name)s: %(source_subject)s",
                    source_name=lead.name,
                    source_subject=mark,
                ),
            )
            for lead in others
        )
        return self.env.execute_query(
            SQL(
                """UPDATE mail_message m
                      SET res_id = %(master)s,
                          subject = CASE WHEN COALESCE(old.subject, '') = '' THEN l.plain
                                         ELSE replace(l.with_subject, %(mark)s, old.subject) END
                     FROM (VALUES %(labels)s) AS l(lead_id, plain, with_subject),
                          mail_message old
                    WHERE old.id = m.id AND m.model = 'crm.lead' AND m.res_id = l.lead_id
                RETURNING m.id, l.lead_id, old.subject""",
                master=self.id,
                mark=mark,
                labels=labels,
            )
        )

    def _merge_move_attachments(self, others):
        """Returns [(attachment id, lead it came from, name before)]."""
        mark = "\x1f"
        labels = SQL(", ").join(
            SQL(
                "(%s, %s)",
                lead.id,
                self.env._(
                    "%(attach_name)s (from %(lead_name)s)",
                    attach_name=mark,
                    lead_name=(lead.name or "")[:20],
                ),
            )
            for lead in others
        )
        return self.env.execute_query(
            SQL(
                """UPDATE ir_attachment a
                      SET res_id = %(master)s, name = replace(l.label, %(mark)s, old.name)
                     FROM (VALUES %(labels)s) AS l(lead_id, label), ir_attachment old
                    WHERE old.id = a.id AND a.res_model = 'crm.lead' AND a.res_id = l.lead_id
                RETURNING a.id, l.lead_id, old.name""",
                master=self.id,
                mark=mark,
                labels=labels,
            )
        )

    def _merge_move_followers(self, other_ids):
        """Every follower ends up following `self` once, with the union of the subtypes it
        followed on each record. Returns the journal of it: followers moved [(id, lead it
        followed)], followers removed (a partner following two of the records) with their
        subtypes, and the subtypes added to the follower kept."""
        rows = self.env.execute_query(
            SQL(
                """SELECT f.id, f.partner_id, f.res_id,
                          COALESCE(array_agg(r.mail_message_subtype_id ORDER BY
                                   r.mail_message_subtype_id)
                                   FILTER (WHERE r.mail_message_subtype_id IS NOT NULL), '{}')
                     FROM mail_followers f
                LEFT JOIN mail_followers_mail_message_subtype_rel r ON r.mail_followers_id = f.id
                    WHERE f.res_model = 'crm.lead' AND f.res_id IN %s
                 GROUP BY f.id ORDER BY f.res_id = %s DESC, f.id""",
                (self.id, *other_ids),
                self.id,
            )
        )
        kept, removed, subtypes_added = {}, [], []
        for follower_id, partner_id, res_id, subtype_ids in rows:
            if partner_id not in kept:
                kept[partner_id] = (follower_id, res_id, set(subtype_ids))
                continue
            keep_id, _res_id, keep_subtypes = kept[partner_id]
            removed.append([follower_id, partner_id, res_id, list(subtype_ids)])
            for subtype_id in set(subtype_ids) - keep_subtypes:
                subtypes_added.append([keep_id, subtype_id])
                keep_subtypes.add(subtype_id)
        cr = self.env.cr
        if subtypes_added:
            cr.execute(
                SQL(
                    """INSERT INTO mail_followers_mail_message_subtype_rel
                                (mail_followers_id, mail_message_subtype_id) VALUES %s""",
                    SQL(", ").join(SQL("(%s, %s)", *pair) for pair in subtypes_added),
                )
            )
        if removed:
            cr.execute(
                SQL(
                    "DELETE FROM mail_followers WHERE id IN %s",
                    tuple(row[0] for row in removed),
                )
            )
        moved = self.env.execute_query(
            SQL(
                """UPDATE mail_followers f SET res_id = %s
                     FROM mail_followers old
                    WHERE old.id = f.id AND f.res_model = 'crm.lead' AND f.res_id IN %s
                RETURNING f.id, old.res_id""",
                self.id,
                other_ids,
            )
        )
        return {
            "followers_moved": moved,
            "followers_removed": removed,
            "follower_subtypes_added": subtypes_added,
        }

    def _merge_move_references(self, other_ids):
        """Records of other models pointing at a merged lead (a meeting's opportunity, a
        quotation's, any module's) point at `self` afterwards. Returns the references
        moved [{table, column, rows: [(id, lead it pointed at)]}] and the many2many links
        to `self` added [{table, own, lead, rows: [own id]}]."""
        references, links_added = [], []
        for model in self.env.registry.values():
            if model._abstract or model._transient or not model._auto:
                continue
            if model._name in ("crm.lead", "crm.lead.duplicate.exclusion", "crm.lead.merge.log"):
                continue
            for field in model._fields.values():
                if field.comodel_name != self._name or not field.store:
                    continue
                if field.type == "many2one":
                    rows = self.env.execute_query(
                        SQL(
                            """UPDATE %(table)s t SET %(column)s = %(master)s
                                 FROM %(table)s old
                                WHERE old.id = t.id AND t.%(column)s IN %(others)s
                            RETURNING t.id, old.%(column)s""",
                            table=SQL.identifier(model._table),
                            column=SQL.identifier(field.name),
                            master=self.id,
                            others=other_ids,
                        )
                    )
                    if rows:
                        references.append(
                            {"table": model._table, "column": field.name, "rows": rows}
                        )
                elif field.type == "many2many":
                    rows = self.env.execute_query(
                        SQL(
                            """INSERT INTO %(rel)s (%(own)s, %(lead)s)
                               SELECT DISTINCT %(own)s, %(master)s FROM %(rel)s
                                WHERE %(lead)s IN %(others)s
                               ON CONFLICT DO NOTHING
                            RETURNING %(own)s""",
                            rel=SQL.identifier(field.relation),
                            own=SQL.identifier(field.column1),
                            lead=SQL.identifier(field.column2),
                            master=self.id,
                            others=other_ids,
                        )
                    )
                    if rows:
                        links_added.append(
                            {
                                "table": field.relation,
                                "own": field.column1,
                                "lead": field.column2,
                                "rows": [row[0] for row in rows],
                            }
                        )
        return references, links_added

    def _merge_post_summary(self, others, provenance, moved, log):
        """A note on the merged record: which records it absorbed, which values came from
        which of them, and how much history moved."""
        rows = Markup("").join(
            Markup("<li>%s</li>")
            % self.env._(
                "%(name)s (#%(id)s) — %(state)s, %(stage)s, %(salesperson)s, %(revenue)s",
                name=lead.name,
                id=lead.id,
                state=self.env._("won")
                if lead.stage_id.is_won
                else (self.env._("lost") if not lead.active else self.env._("open")),
                stage=lead.stage_id.name or "",
                salesperson=lead.user_id.name or self.env._("no salesperson"),
                revenue=tools.format_amount(self.env, lead.expected_revenue, lead.company_currency),
            )
            for lead in others
        )
        filled = Markup("").join(
            Markup("<li>%s</li>")
            % self.env._(
                "%(field)s: %(value)s (from %(origin)s)",
                field=label,
                value=value,
                origin=", ".join(source.mapped("name")),
            )
            for label, value, source in provenance
        )
        counts = self.env._(
            "Moved here — messages: %(messages)s, activities: %(activities)s, "
            "attachments: %(attachments)s, followers: %(followers)s.",
            **moved,
        )
        body = Markup("<p>%s</p><ul>%s</ul>") % (
            self.env._("Records merged into this one (%(count)s):", count=len(others)),
            rows,
        )
        if filled:
            body += Markup("<p>%s</p><ul>%s</ul>") % (self.env._("Filled in from them:"), filled)
        body += Markup("<p>%s</p>") % counts
        body += Markup("<p>%s</p>") % self.env._(
            "Wrong merge? Undo Merge, at the top of this record, brings the merged records "
            "back as they were, until %(date)s.",
            date=tools.format_date(self.env, log.undo_deadline),
        )
        # The summary does not make the user who merged a follower: followers are only
        # those of the merged records.
        log.summary_message_id = self.with_context(mail_create_nosubscribe=True).message_post(
            body=body, subtype_xmlid="mail.mt_note"
        )
