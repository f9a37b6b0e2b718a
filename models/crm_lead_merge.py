"""The lossless merge of leads and opportunities."""

from markupsafe import Markup

from odoo import models, tools
from odoo.exceptions import UserError
from odoo.tools import SQL

from .crm_lead import QUALIFICATION_FIELDS


class CrmLead(models.Model):
    """Merge: nothing lost, never across companies, at most one won deal."""

    _inherit = "crm.lead"

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
        _ = self.env._
        if len(self) < 2:
            raise UserError(_("Select at least two leads or opportunities to merge."))
        if master not in self:
            raise UserError(_("The record to keep must be one of the records merged."))
        if len({lead.company_id.id for lead in self}) > 1:
            raise UserError(
                _(
                    "Leads of different companies are never merged: %(leads)s.",
                    leads=", ".join(
                        f"{lead.display_name} ({lead.company_id.name or '—'})" for lead in self
                    ),
                )
            )
        won = self.filtered(lambda lead: lead.stage_id.is_won)
        if len(won) > 1:
            raise UserError(
                _(
                    "Two won deals are two sales: they are not merged (%(deals)s).",
                    deals=", ".join(won.mapped("display_name")),
                )
            )
        if won and won != master:
            raise UserError(
                _("A won deal is the record kept by a merge: keep %(deal)s.", deal=won.name)
            )
        if not master.active and (self - master).filtered("active"):
            raise UserError(
                _(
                    "An open lead is not merged into a lost one: keep an open record, or "
                    "restore %(lead)s first.",
                    lead=master.name,
                )
            )
        self.check_access("write")

    def _merge_into(self, master, user_id=False, team_id=False):
        """Merges these leads into `master`, which they must include, and deletes the
        others: their messages, activities, attachments, followers, calendar events and
        every record pointing at them move to `master`; its empty fields are filled from
        the others (crm's rules); a summary in its chatter says what came from where.
        All or nothing: a failure leaves every record as it was."""
        self._check_merge(master)
        others = (self - master)._sort_by_confidence_level(reverse=True)
        with self.env.cr.savepoint():
            values = (master + others)._merge_data(master._merge_get_fields())
            if master.active:
                # crm takes a lost record's reason when the kept one has no probability;
                # an open record stays open, without a lost reason.
                values.pop("lost_reason_id", None)
            provenance = master._merge_provenance(others, values)
            values.update(master._merge_assignment_values(values, user_id, team_id))
            values.update(master._merge_priority_values(others, values))
            moved = master._merge_move_dependencies(others)
            master.write(values)
            master._merge_post_summary(others, provenance, moved)
            # sudo: the user may write every merged record (checked above); crm also
            # deletes the merged records as superuser, whatever the unlink rights.
            others.sudo().unlink()
        return master

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

    def _merge_move_dependencies(self, others):
        """Moves what hangs on `others` to `self` in a few set-based statements; returns
        {kind: number of rows moved}."""
        self.ensure_one()
        self.env.flush_all()
        other_ids = tuple(others.ids)
        moved = {
            "messages": self._merge_move_messages(others),
            "attachments": self._merge_move_attachments(others),
            "followers": self._merge_move_followers(other_ids),
        }
        cr = self.env.cr
        cr.execute(
            SQL(
                "UPDATE mail_activity SET res_id = %s "
                "WHERE res_model = 'crm.lead' AND res_id IN %s",
                self.id,
                other_ids,
            )
        )
        moved["activities"] = cr.rowcount
        cr.execute(
            SQL(
                "UPDATE calendar_event SET res_id = %s "
                "WHERE res_model = 'crm.lead' AND res_id IN %s",
                self.id,
                other_ids,
            )
        )
        moved["references"] = self._merge_move_references(other_ids)
        self.env.invalidate_all()
        return moved

    def _merge_move_messages(self, others):
        """Messages move with their tracking values and notifications, their subject saying
        which record they came from, as crm's merge writes it."""
        mark = "\x1f"
        _ = self.env._
        labels = SQL(", ").join(
            SQL(
                "(%s, %s, %s)",
                lead.id,
                _("From %(source_name)s", source_name=lead.name),
                _(
                    "From %(source_name)s: %(source_subject)s",
                    source_name=lead.name,
                    source_subject=mark,
                ),
            )
            for lead in others
        )
        self.env.cr.execute(
            SQL(
                """UPDATE mail_message m
                      SET res_id = %(master)s,
                          subject = CASE WHEN COALESCE(m.subject, '') = '' THEN l.plain
                                         ELSE replace(l.with_subject, %(mark)s, m.subject) END
                     FROM (VALUES %(labels)s) AS l(lead_id, plain, with_subject)
                    WHERE m.model = 'crm.lead' AND m.res_id = l.lead_id""",
                master=self.id,
                mark=mark,
                labels=labels,
            )
        )
        return self.env.cr.rowcount

    def _merge_move_attachments(self, others):
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
        self.env.cr.execute(
            SQL(
                """UPDATE ir_attachment a
                      SET res_id = %(master)s, name = replace(l.label, %(mark)s, a.name)
                     FROM (VALUES %(labels)s) AS l(lead_id, label)
                    WHERE a.res_model = 'crm.lead' AND a.res_id = l.lead_id""",
                master=self.id,
                mark=mark,
                labels=labels,
            )
        )
        return self.env.cr.rowcount

    def _merge_move_followers(self, other_ids):
        """Every follower ends up following `self` once, with the union of the subtypes it
        followed on each record."""
        cr = self.env.cr
        params = {"master": self.id, "all_ids": (self.id, *other_ids)}
        followers = SQL(
            """WITH f AS (
                    SELECT id, partner_id, res_id FROM mail_followers
                     WHERE res_model = 'crm.lead' AND res_id IN %(all_ids)s),
               keep AS (
                    SELECT DISTINCT ON (partner_id) partner_id, id FROM f
                  ORDER BY partner_id, res_id = %(master)s DESC, id)""",
            **params,
        )
        cr.execute(
            SQL(
                """%s
                INSERT INTO mail_followers_mail_message_subtype_rel
                            (mail_followers_id, mail_message_subtype_id)
                     SELECT keep.id, r.mail_message_subtype_id
                       FROM f JOIN keep USING (partner_id)
                       JOIN mail_followers_mail_message_subtype_rel r ON r.mail_followers_id = f.id
                      WHERE f.id != keep.id
                ON CONFLICT DO NOTHING""",
                followers,
            )
        )
        cr.execute(
            SQL(
                """%s
                DELETE FROM mail_followers d USING f
                 WHERE d.id = f.id AND f.id NOT IN (SELECT id FROM keep)""",
                followers,
            )
        )
        cr.execute(
            SQL(
                """UPDATE mail_followers SET res_id = %(master)s
                    WHERE res_model = 'crm.lead' AND res_id IN %(others)s""",
                master=self.id,
                others=other_ids,
            )
        )
        return cr.rowcount

    def _merge_move_references(self, other_ids):
        """Records of other models pointing at a merged lead (a meeting's opportunity, a
        quotation's, any module's) point at `self` afterwards."""
        cr = self.env.cr
        count = 0
        for model in self.env.registry.values():
            if model._abstract or model._transient or not model._auto:
                continue
            if model._name in ("crm.lead", "crm.lead.duplicate.exclusion"):
                continue
            for field in model._fields.values():
                if field.comodel_name != self._name or not field.store:
                    continue
                if field.type == "many2one":
                    cr.execute(
                        SQL(
                            "UPDATE %s SET %s = %s WHERE %s IN %s",
                            SQL.identifier(model._table),
                            SQL.identifier(field.name),
                            self.id,
                            SQL.identifier(field.name),
                            other_ids,
                        )
                    )
                    count += cr.rowcount
                elif field.type == "many2many":
                    cr.execute(
                        SQL(
                            """INSERT INTO %(rel)s (%(own)s, %(lead)s)
                               SELECT DISTINCT %(own)s, %(master)s FROM %(rel)s
                                WHERE %(lead)s IN %(others)s
                               ON CONFLICT DO NOTHING""",
                            rel=SQL.identifier(field.relation),
                            own=SQL.identifier(field.column1),
                            lead=SQL.identifier(field.column2),
                            master=self.id,
                            others=other_ids,
                        )
                    )
                    count += cr.rowcount
        return count

    def _merge_post_summary(self, others, provenance, moved):
        """A note on the merged record: which records it absorbed, which values came from
        which of them, and how much history moved."""
        _ = self.env._
        rows = Markup("").join(
            Markup("<li>%s</li>")
            % _(
                "%(name)s (#%(id)s) — %(state)s, %(stage)s, %(salesperson)s, %(revenue)s",
                name=lead.name,
                id=lead.id,
                state=_("won")
                if lead.stage_id.is_won
                else (_("lost") if not lead.active else _("open")),
                stage=lead.stage_id.name or "",
                salesperson=lead.user_id.name or _("no salesperson"),
                revenue=tools.format_amount(self.env, lead.expected_revenue, lead.company_currency),
            )
            for lead in others
        )
        filled = Markup("").join(
            Markup("<li>%s</li>")
            % _(
                "%(field)s: %(value)s (from %(origin)s)",
                field=label,
                value=value,
                origin=", ".join(source.mapped("name")),
            )
            for label, value, source in provenance
        )
        counts = _(
            "Moved here — messages: %(messages)s, activities: %(activities)s, "
            "attachments: %(attachments)s, followers: %(followers)s.",
            **moved,
        )
        body = Markup("<p>%s</p><ul>%s</ul>") % (
            _("Records merged into this one (%(count)s):", count=len(others)),
            rows,
        )
        if filled:
            body += Markup("<p>%s</p><ul>%s</ul>") % (_("Filled in from them:"), filled)
        body += Markup("<p>%s</p>") % counts
        # The summary does not make the user who merged a follower: followers are only
        # those of the merged records.
        self.with_context(mail_create_nosubscribe=True).message_post(
            body=body, subtype_xmlid="mail.mt_note"
        )
