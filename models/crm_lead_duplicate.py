"""Match keys and similar leads: the same customer typed in different ways."""

import logging
from collections import defaultdict

from odoo import api, fields, models, tools
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..rules.match_keys import (
    FUZZY_COMPANY_SIMILARITY,
    MATCH_COMPANY,
    MATCH_CONTACT,
    MATCH_DOMAIN,
    MATCH_EMAIL,
    MATCH_FUZZY_COMPANY,
    MATCH_KEY_FIELDS,
    MATCH_PHONE,
    lead_keys,
)

_logger = logging.getLogger(__name__)

MATCH_KEY_BATCH_SIZE = 20000
# "<last id done>:<last id to do>" of the keys computed after an install by the scheduler.
MATCH_KEYS_PENDING_PARAM = "crm_pipeline_optimizer.match_keys_pending"


class CrmLead(models.Model):
    """Match keys, similar leads and the actions on them."""

    _inherit = "crm.lead"

    # Match keys: the same customer typed in different ways gives the same keys.
    email_match_key = fields.Char(
        compute="_compute_match_keys", store=True, index=True, copy=False, readonly=True
    )
    phone_match_key = fields.Char(
        compute="_compute_match_keys", store=True, index=True, copy=False, readonly=True
    )
    company_match_key = fields.Char(
        compute="_compute_match_keys", store=True, index=True, copy=False, readonly=True
    )
    contact_match_key = fields.Char(
        compute="_compute_match_keys", store=True, index=True, copy=False, readonly=True
    )
    domain_match_key = fields.Char(
        compute="_compute_match_keys", store=True, index=True, copy=False, readonly=True
    )
    similar_lead_ids = fields.Many2many(
        "crm.lead",
        compute="_compute_similar_leads",
        string="Similar Leads",
        help="Leads and opportunities of the same company with the same email, phone, "
        "company name or internet domain, or a company name written almost the same way.",
    )
    similar_lead_count = fields.Integer(compute="_compute_similar_leads", string="Similar")
    similarity_reason = fields.Char(compute="_compute_similarity_reason", string="Why Similar")

    def init(self):
        res = super().init()
        self._init_trigram_extension()
        # Similar company names are compared between leads of one contact whose company
        # names carry the same numbers: this index finds them.
        tools.create_index(
            self.env.cr,
            "crm_lead_contact_company_number_index",
            self._table,
            ["contact_match_key", "(regexp_replace(company_match_key, '[^0-9]', '', 'g'))"],
            where="contact_match_key IS NOT NULL AND company_match_key IS NOT NULL",
        )
        return res

    def _init_trigram_extension(self):
        """Company names written almost the same way are compared with PostgreSQL's
        pg_trgm: create it when the database role may, else match exact keys only and say
        so in the log."""
        if self.env.registry.has_trigram:
            return
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as error:  # any refusal means: no fuzzy match
            _logger.warning(
                "crm_pipeline_optimizer: PostgreSQL extension pg_trgm is not available "
                "(%s); similar leads match exact company names only.",
                error,
            )
            return
        self.env.registry.has_trigram = True

    @api.depends(
        "email_from",
        "phone",
        "mobile",
        "website",
        "partner_name",
        "contact_name",
        "country_id",
        "company_id",
        "user_id",
    )
    def _compute_match_keys(self):
        for lead in self:
            lead.update(
                lead_keys(
                    lead.email_from,
                    lead.phone,
                    lead.mobile,
                    lead.website,
                    lead.partner_name,
                    lead.contact_name,
                    lead._match_country_codes,
                )
            )

    def _match_country_codes(self):
        """Countries a phone number typed without its prefix is read in: the lead's, its
        company's, its salesperson's, the current company's; one at a time, since reading
        the next costs queries when the lead is created."""
        yield self.country_id.code
        yield self.company_id.country_id.code
        yield self.user_id.country_id.code
        yield self.env.company.country_id.code

    @api.depends_context("uid")
    @api.depends(*MATCH_KEY_FIELDS)
    def _compute_similar_leads(self):
        similar = self._similar_leads_by_lead()
        for lead in self:
            matches = similar.get(lead._origin.id, {})
            lead.similar_lead_ids = [(6, 0, list(matches))]
            lead.similar_lead_count = len(matches)

    @api.depends_context("similar_to_lead_id")
    def _compute_similarity_reason(self):
        source = self.browse(self.env.context.get("similar_to_lead_id")).exists()
        matches = source._similar_leads_by_lead().get(source.id, {}) if source else {}
        labels = self._match_reason_labels()
        for lead in self:
            if source and lead._origin == source:
                lead.similarity_reason = self.env._("This record")
                continue
            bits = matches.get(lead._origin.id, 0)
            lead.similarity_reason = ", ".join(label for bit, label in labels.items() if bits & bit)

    @api.model
    def _match_reason_labels(self):
        return {
            MATCH_EMAIL: self.env._("Same email"),
            MATCH_PHONE: self.env._("Same phone"),
            MATCH_COMPANY: self.env._("Same company name"),
            MATCH_FUZZY_COMPANY: self.env._("Similar company name"),
            MATCH_CONTACT: self.env._("Same contact name"),
            MATCH_DOMAIN: self.env._("Same internet domain"),
        }

    def _similar_leads_by_lead(self):
        """{lead id: {similar lead id: reason bits}} for these leads, in two queries
        whatever their number: one finds the matches of the same company (archived ones
        too, minus pairs marked as not duplicates), one keeps those the user may read."""
        ids = tuple(lead_id for lead_id in self._origin.ids if lead_id)
        if not ids:
            return {}
        self.flush_model([*MATCH_KEY_FIELDS, "company_id"])
        self.env["crm.lead.duplicate.exclusion"].flush_model()
        matched = [
            SQL(
                "SELECT s.id AS lead_id, o.id AS other_id, %s AS reason FROM source s "
                "JOIN crm_lead o ON o.%s = s.%s",
                bit,
                SQL.identifier(column),
                SQL.identifier(column),
            )
            for bit, column in (
                (MATCH_EMAIL, "email_match_key"),
                (MATCH_PHONE, "phone_match_key"),
                (MATCH_COMPANY, "company_match_key"),
                (MATCH_DOMAIN, "domain_match_key"),
            )
        ]
        if self.env.registry.has_trigram:
            # A company name written almost the same way, for the same contact; the
            # numbers in the names must agree ('Acme 12' is not 'Acme 13').
            matched.append(
                SQL(
                    """SELECT s.id, o.id, %s FROM source s
                         JOIN crm_lead o ON o.contact_match_key = s.contact_match_key
                          AND regexp_replace(o.company_match_key, '[^0-9]', '', 'g')
                            = regexp_replace(s.company_match_key, '[^0-9]', '', 'g')
                        WHERE o.company_match_key != s.company_match_key
                          AND similarity(o.company_match_key, s.company_match_key) >= %s""",
                    MATCH_FUZZY_COMPANY | MATCH_CONTACT,
                    FUZZY_COMPANY_SIMILARITY,
                )
            )
        rows = self.env.execute_query(
            SQL(
                """
                WITH source AS MATERIALIZED (
                    SELECT id, company_id, email_match_key, phone_match_key,
                           company_match_key, contact_match_key, domain_match_key
                      FROM crm_lead WHERE id IN %(ids)s
                )
                SELECT m.lead_id, m.other_id, bit_or(m.reason)
                  FROM (%(matched)s) m
                  JOIN source s ON s.id = m.lead_id
                  JOIN crm_lead o ON o.id = m.other_id
                 WHERE m.other_id != m.lead_id
                   AND o.company_id IS NOT DISTINCT FROM s.company_id
                   AND NOT EXISTS (
                       SELECT FROM crm_lead_duplicate_exclusion x
                        WHERE x.lead_low_id = LEAST(m.lead_id, m.other_id)
                          AND x.lead_high_id = GREATEST(m.lead_id, m.other_id))
              GROUP BY m.lead_id, m.other_id
                """,
                ids=ids,
                matched=SQL(" UNION ALL ").join(matched),
            )
        )
        if not rows:
            return {}
        readable = set(
            self.with_context(active_test=False)
            .search([("id", "in", list({other_id for _lead, other_id, _bits in rows}))])
            .ids
        )
        similar = defaultdict(dict)
        for lead_id, other_id, bits in rows:
            if other_id in readable:
                similar[lead_id][other_id] = bits
        return similar

    @api.readonly
    def action_show_similar_leads(self):
        """The similar leads, with this one first, each saying why it is similar."""
        self.ensure_one()
        self.check_access("read")
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "crm_pipeline_optimizer.crm_lead_similar_action"
        )
        action["domain"] = [("id", "in", (self + self.similar_lead_ids).ids)]
        action["context"] = {
            "active_test": False,
            "similar_to_lead_id": self.id,
            "create": False,
        }
        return action

    def action_merge_similar_leads(self):
        """Opens the merge wizard on this lead and its similar leads."""
        self.ensure_one()
        self.check_access("write")
        return self.env["crm.lead.merge.cluster"]._action_open(
            {"active_model": "crm.lead", "active_ids": (self + self.similar_lead_ids).ids}
        )

    def action_mark_not_duplicate(self):
        """From the similar leads of a lead: these are not duplicates of it."""
        source = self.browse(self.env.context.get("similar_to_lead_id")).exists()
        if not source:
            raise UserError(self.env._("Open the similar leads of a lead to mark them."))
        (source + self).check_access("read")
        Exclusion = self.env["crm.lead.duplicate.exclusion"]
        for lead in self - source:
            Exclusion._exclude(source + lead)
        return True

    @api.model
    def _fill_match_keys(self, batch_size=MATCH_KEY_BATCH_SIZE):
        """Computes the match keys of every lead, in batches of ids, behind the ORM: at
        install, without stamping write_date. Returns the number of leads whose keys
        changed."""
        self.flush_model()
        last_id, changed = 0, 0
        while last_id is not None:
            last_id, batch_changed = self._fill_match_keys_after(last_id, batch_size)
            changed += batch_changed
        self._match_keys_filled(analyze=bool(changed))
        return changed

    @api.model
    def _fill_match_keys_after(self, after_id, batch_size, until_id=None):
        """Computes the match keys of the next `batch_size` leads of id above `after_id`
        (up to `until_id`). Returns (the last id done or None when none was left, the
        number of leads whose keys changed)."""
        rows = self.env.execute_query(
            SQL(
                """SELECT l.id, l.email_from, l.phone, l.mobile, l.website, l.partner_name,
                          l.contact_name, lc.code, cc.code, uc.code,
                          l.email_match_key, l.phone_match_key, l.company_match_key,
                          l.contact_match_key, l.domain_match_key
                     FROM crm_lead l
                LEFT JOIN res_country lc ON lc.id = l.country_id
                LEFT JOIN res_company co ON co.id = l.company_id
                LEFT JOIN res_partner cp ON cp.id = co.partner_id
                LEFT JOIN res_country cc ON cc.id = cp.country_id
                LEFT JOIN res_users u ON u.id = l.user_id
                LEFT JOIN res_partner up ON up.id = u.partner_id
                LEFT JOIN res_country uc ON uc.id = up.country_id
                    WHERE l.id > %s AND l.id <= %s ORDER BY l.id LIMIT %s""",
                after_id,
                until_id if until_id is not None else 2**31 - 1,
                batch_size,
            )
        )
        if not rows:
            return None, 0
        default_country = self.env.company.country_id.code
        updates = []
        for row in rows:
            keys = lead_keys(*row[1:7], (*row[7:10], default_country))
            new = tuple(keys[fname] or None for fname in MATCH_KEY_FIELDS)
            if new != tuple(row[10:15]):
                updates.append(SQL("(%s, %s, %s, %s, %s, %s)", row[0], *new))
        if updates:
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_lead l
                          SET email_match_key = v.email, phone_match_key = v.phone,
                              company_match_key = v.company, contact_match_key = v.contact,
                              domain_match_key = v.domain
                         FROM (VALUES %s) AS v(id, email, phone, company, contact, domain)
                        WHERE l.id = v.id""",
                    SQL(", ").join(updates),
                )
            )
        return rows[-1][0], len(updates)

    @api.model
    def _match_keys_filled(self, analyze):
        if analyze:
            # The planner must know the new keys, or the similar-leads query scans the
            # table (README, Benchmarks).
            self.env.cr.execute("ANALYZE crm_lead")
        self.invalidate_model(list(MATCH_KEY_FIELDS))

    @api.model
    def _defer_match_keys(self):
        """The keys of the leads already in a large database are computed by the
        scheduler after the install, a batch a transaction; leads created from now on get
        theirs when they are saved."""
        self.env.cr.execute("SELECT COALESCE(max(id), 0) FROM crm_lead")
        self.env["ir.config_parameter"].sudo().set_param(
            MATCH_KEYS_PENDING_PARAM, f"0:{self.env.cr.fetchone()[0]}"
        )
        self.env.ref("crm_pipeline_optimizer.ir_cron_crm_lead_match_keys")._trigger()

    @api.model
    def _cron_fill_match_keys(self, batch_size=MATCH_KEY_BATCH_SIZE):
        """One batch of the keys left to compute after an install (see _defer_match_keys);
        the scheduler runs the job again at once while some are left."""
        parameters = self.env["ir.config_parameter"].sudo()
        pending = parameters.get_param(MATCH_KEYS_PENDING_PARAM)
        if not pending:
            return
        after_id, until_id = map(int, pending.split(":"))
        done_id, changed = self._fill_match_keys_after(after_id, batch_size, until_id)
        remaining = 0
        if done_id is not None:
            self.env.cr.execute(
                SQL("SELECT count(*) FROM crm_lead WHERE id > %s AND id <= %s", done_id, until_id)
            )
            remaining = self.env.cr.fetchone()[0]
        if remaining:
            parameters.set_param(MATCH_KEYS_PENDING_PARAM, f"{done_id}:{until_id}")
            self.invalidate_model(list(MATCH_KEY_FIELDS))
        else:
            parameters.set_param(MATCH_KEYS_PENDING_PARAM, False)
            self._match_keys_filled(analyze=True)
        _logger.info("Match keys: %s leads changed, %s left", changed, remaining)
        self.env["ir.cron"]._notify_progress(done=changed, remaining=remaining)
