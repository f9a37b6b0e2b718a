"""Duplicates caught at import: each imported row is compared with the existing leads of its
company, and with the rows before it, by the duplicate rules."""

from markupsafe import Markup, escape

from odoo import api, models
from odoo.fields import Command
from odoo.tools import SQL, html2plaintext

from ..rules.match_keys import MATCH_KEY_FIELDS, lead_keys
from .crm_lead_duplicate_cluster import DUPLICATE_RULES

# What the import does with a row that duplicates an existing lead (or an earlier row):
# create it and list both for review, merge it into the existing lead, or skip it.
IMPORT_DUPLICATES_CONTEXT_KEY = "crm_import_duplicates"
IMPORT_DUPLICATE_MODES = ("review", "merge", "skip")
# Where the matches are reported for the import's Test button (a list in the context).
IMPORT_REPORT_CONTEXT_KEY = "crm_import_duplicates_report"
# Fields of the existing lead an imported row never changes when merged into it.
KEPT_ON_MERGE = frozenset({"user_id", "team_id", "stage_id", "company_id", "type", "active"})


class CrmLead(models.Model):
    """Import: rows that are a lead the database already has."""

    _inherit = "crm.lead"

    @api.model
    def _load_records_create(self, vals_list):
        mode = self.env.context.get(IMPORT_DUPLICATES_CONTEXT_KEY)
        if not self.env.context.get("import_file") or mode not in IMPORT_DUPLICATE_MODES:
            return super()._load_records_create(vals_list)
        matches = self._import_matches(vals_list)
        report = self.env.context.get(IMPORT_REPORT_CONTEXT_KEY)
        if report is not None:
            report.extend(self._import_report_lines(matches))
        if mode == "review":
            records = super()._load_records_create(vals_list)
            self._import_list_for_review(records, matches)
            return records
        new_indexes = [index for index in range(len(vals_list)) if index not in matches]
        created = super()._load_records_create([vals_list[index] for index in new_indexes])
        lead_of_row = dict(zip(new_indexes, created.ids, strict=True))
        return self._import_merge_or_skip(vals_list, matches, lead_of_row, merge=mode == "merge")

    # ------------------------------------------------------------------ matching
    def _import_row_keys(self, vals):
        """(company id, {match key field: key}) of an imported row."""
        company = self.env["res.company"].browse(vals.get("company_id")) or self.env.company
        country = self.env["res.country"].browse(vals.get("country_id"))
        user = self.env["res.users"].browse(vals.get("user_id"))
        keys = lead_keys(
            vals.get("email_from"),
            vals.get("phone"),
            vals.get("mobile"),
            vals.get("website"),
            vals.get("partner_name"),
            vals.get("contact_name"),
            (
                country.code,
                company.country_id.code,
                user.country_id.code,
                self.env.company.country_id.code,
            ),
        )
        return company.id, keys

    def _import_matches(self, vals_list):
        """{row index: ("lead", existing lead id) or ("row", earlier row index), with the
        rule's reason bits}: the best match of each row by the duplicate rules, an
        existing lead of the row's company first (one query for all rows), else an
        earlier row of the file."""
        rows = [self._import_row_keys(vals) for vals in vals_list]
        existing = self._import_existing_matches(rows)
        matches, first_row = {}, {}
        for index, (company_id, keys) in enumerate(rows):
            if index in existing:
                matches[index] = existing[index]
            for rule_index, (fnames, _confidence, bits) in enumerate(DUPLICATE_RULES):
                if not all(keys[fname] for fname in fnames):
                    continue
                rule_key = (rule_index, company_id, *(keys[fname] for fname in fnames))
                if rule_key in first_row:
                    matches.setdefault(index, ("row", first_row[rule_key], bits))
                else:
                    first_row[rule_key] = index
        return matches

    def _import_existing_matches(self, rows):
        """{row index: ("lead", lead id, reason bits)}: for each row, the existing lead of its
        company it matches by the strongest rule (an open one, then the newest)."""
        values = [
            SQL(
                "(%s, %s, %s)",
                index,
                company_id,
                SQL(", ").join(
                    SQL("%s::varchar", keys[fname] or None) for fname in MATCH_KEY_FIELDS
                ),
            )
            for index, (company_id, keys) in enumerate(rows)
        ]
        if not values:
            return {}
        self.flush_model([*MATCH_KEY_FIELDS, "company_id", "active"])
        per_rule = [
            SQL(
                """SELECT r.row_index, l.id, %(confidence)s AS confidence, %(bits)s AS bits,
                          l.active
                     FROM imported r JOIN crm_lead l ON %(joined)s
                    WHERE l.company_id IS NOT DISTINCT FROM r.company_id""",
                confidence=confidence,
                bits=bits,
                joined=SQL(" AND ").join(
                    SQL("l.%s = r.%s", SQL.identifier(fname), SQL.identifier(fname))
                    for fname in fnames
                ),
            )
            for fnames, confidence, bits in DUPLICATE_RULES
        ]
        found = self.env.execute_query(
            SQL(
                """WITH imported (row_index, company_id, %(columns)s) AS (VALUES %(values)s)
                   SELECT DISTINCT ON (row_index) row_index, id, bits
                     FROM (%(matches)s) m
                 ORDER BY row_index, confidence DESC, active DESC, id DESC""",
                columns=SQL(", ").join(map(SQL.identifier, MATCH_KEY_FIELDS)),
                values=SQL(", ").join(values),
                matches=SQL(" UNION ALL ").join(per_rule),
            )
        )
        # Only leads the importing user may see count: the import neither merges into nor
        # reports a lead they cannot read.
        readable = set(
            self.browse({lead_id for _row, lead_id, _bits in found})._filtered_access("read").ids
        )
        return {
            row_index: ("lead", lead_id, bits)
            for row_index, lead_id, bits in found
            if lead_id in readable
        }

    # ------------------------------------------------------------------ modes
    def _import_list_for_review(self, records, matches):
        """The imported leads that match and what they match, as clusters of the
        duplicates centre."""
        if not matches:
            return
        lead_ids = set()
        for index, (kind, target, _bits) in matches.items():
            lead_ids.add(records[index].id)
            lead_ids.add(target if kind == "lead" else records[target].id)
        # sudo: the clusters are the duplicates centre's (sales administrators), found for
        # the rows this user imported and the leads they match.
        self.env["crm.lead.duplicate.cluster"].sudo()._find_clusters(
            lead_domain=[("id", "in", list(lead_ids))]
        )

    def _import_merge_or_skip(self, vals_list, matches, lead_of_row, merge):
        """The rows that match a lead (`matches`) are merged into it (`merge`) or skipped;
        `lead_of_row` holds the leads created for the others. Returns, for each row, the
        lead that stands for it."""
        for index in sorted(matches):
            kind, target, _bits = matches[index]
            lead_id = target if kind == "lead" else lead_of_row[target]
            lead_of_row[index] = lead_id
            if merge:
                self.browse(lead_id)._import_merge_row(vals_list[index])
        return self.browse([lead_of_row[index] for index in range(len(vals_list))])

    def _import_merge_row(self, vals):
        """Fills this lead's empty fields from an imported row, adds its tags and posts its
        description as a note. What the lead already has is never overwritten."""
        self.ensure_one()
        values = {}
        for fname, value in vals.items():
            field = self._fields.get(fname)
            if not field or fname in KEPT_ON_MERGE or fname == "description":
                continue
            if field.type == "many2many":
                if fname == "tag_ids":
                    values[fname] = [Command.link(tag_id) for tag_id in _command_ids(value)]
                continue
            if field.type == "one2many" or self[fname] or value in (False, None, ""):
                continue
            values[fname] = value
        if values:
            self.write(values)
        description = html2plaintext(vals.get("description") or "").strip()
        if description:
            self.message_post(
                body=Markup("<p>%s</p><p>%s</p>")
                % (
                    self.env._("From an import:"),
                    Markup("<br/>").join(map(escape, description.splitlines())),
                ),
                subtype_xmlid="mail.mt_note",
            )

    def _import_report_lines(self, matches):
        """[(row number, what it matches)] for the Test button."""
        lines = []
        leads = self.browse([target for kind, target, _bits in matches.values() if kind == "lead"])
        names = dict(zip(leads.ids, leads.mapped("display_name"), strict=True))
        for index, (kind, target, _bits) in sorted(matches.items()):
            if kind == "lead":
                lines.append((index + 1, names.get(target, f"#{target}")))
            else:
                lines.append((index + 1, self.env._("row %(row)s", row=target + 1)))
        return lines


def _command_ids(commands):
    """Record ids of many2many commands (set and link) as load() writes them."""
    ids = []
    for command in commands or ():
        if isinstance(command, (list, tuple)):
            if command[0] == Command.SET:
                ids.extend(command[2])
            elif command[0] == Command.LINK:
                ids.append(command[1])
        elif isinstance(command, int):
            ids.append(command)
    return ids
