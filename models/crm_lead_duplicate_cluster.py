import logging
from itertools import combinations

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..rules.match_keys import (
    MATCH_COMPANY,
    MATCH_CONTACT,
    MATCH_DOMAIN,
    MATCH_EMAIL,
    MATCH_PHONE,
)

_logger = logging.getLogger(__name__)

# Leads are the same customer contact when they share one of these combinations of match
# keys (and their company): (keys, confidence in %, reason bits). A phone or a company name
# alone is not enough: colleagues share a switchboard and an employer. A phone or a domain
# with the contact's name is enough unless the leads name different companies.
DUPLICATE_RULES = (
    (("email_match_key",), 95, MATCH_EMAIL),
    (("phone_match_key", "contact_match_key"), 90, MATCH_PHONE | MATCH_CONTACT),
    (
        ("phone_match_key", "contact_match_key", "company_match_key"),
        90,
        MATCH_PHONE | MATCH_CONTACT | MATCH_COMPANY,
    ),
    (("company_match_key", "contact_match_key"), 85, MATCH_COMPANY | MATCH_CONTACT),
    (("domain_match_key", "contact_match_key"), 80, MATCH_DOMAIN | MATCH_CONTACT),
)
# Rules whose groups are dropped when their leads name different companies.
RULES_WITHOUT_COMPANY_CONFLICT = {1, 4}
CLUSTER_INSERT_BATCH = 5000


class CrmLeadDuplicateCluster(models.Model):
    """Leads and opportunities found to be the same customer, to review and merge."""

    _name = "crm.lead.duplicate.cluster"
    _description = "Duplicate Leads"
    _order = "confidence desc, lead_count desc, id"

    company_id = fields.Many2one("res.company", index=True, readonly=True)
    lead_ids = fields.Many2many(
        "crm.lead",
        "crm_lead_duplicate_cluster_lead_rel",
        "cluster_id",
        "lead_id",
        string="Duplicates",
        readonly=True,
        context={"active_test": False},
    )
    lead_count = fields.Integer(string="Records", readonly=True)
    confidence = fields.Integer(
        string="Confidence (%)",
        readonly=True,
        aggregator="avg",
        help="How sure the match is: the weakest of the links that join these records.",
    )
    reason_bits = fields.Integer(readonly=True)
    reasons = fields.Char(compute="_compute_reasons", string="Why")
    state = fields.Selection(
        [("open", "To Review"), ("merged", "Merged"), ("dismissed", "Not Duplicates")],
        default="open",
        required=True,
        readonly=True,
        index=True,
    )
    merged_lead_id = fields.Many2one(
        "crm.lead", string="Merged Into", readonly=True, ondelete="set null"
    )

    @api.depends("lead_ids")
    def _compute_display_name(self):
        for cluster in self:
            first = min(cluster.lead_ids, key=lambda lead: lead.id, default=cluster.lead_ids)
            cluster.display_name = self.env._(
                "%(lead)s and %(count)s more", lead=first.name or "", count=cluster.lead_count - 1
            )

    @api.depends("reason_bits")
    def _compute_reasons(self):
        labels = self.env["crm.lead"]._match_reason_labels()
        for cluster in self:
            cluster.reasons = ", ".join(
                label for bit, label in labels.items() if cluster.reason_bits & bit
            )

    # ------------------------------------------------------------------ actions
    def action_open_merge_wizard(self):
        self.ensure_one()
        self.check_access("write")
        return self.env["crm.lead.merge.cluster"]._action_open({"default_cluster_id": self.id})

    def action_merge(self):
        """Merges each cluster into its default record (crm's choice), salesperson and
        team of that record; all clusters or none."""
        self.check_access("write")
        with self.env.cr.savepoint():
            for cluster in self:
                leads = cluster._mergeable_leads()
                try:
                    master = leads._merge_into(leads._merge_default_master())
                except UserError as error:
                    raise UserError(
                        self.env._(
                            "Duplicates %(cluster)s: %(error)s",
                            cluster=cluster.display_name,
                            error=error.args[0],
                        )
                    ) from error
                cluster._mark_merged(master)
        return True

    def action_dismiss(self):
        """Not duplicates: remember it for every pair of their records."""
        self.check_access("write")
        for cluster in self:
            self.env["crm.lead.duplicate.exclusion"]._exclude(cluster._mergeable_leads())
        self.write({"state": "dismissed"})
        return True

    def _mergeable_leads(self):
        self.ensure_one()
        if self.state != "open":
            raise UserError(
                self.env._(
                    "Duplicates %(cluster)s were already handled.", cluster=self.display_name
                )
            )
        leads = self.lead_ids.exists()
        if len(leads) < 2:
            raise UserError(
                self.env._(
                    "Duplicates %(cluster)s: fewer than two of their records are left.",
                    cluster=self.display_name,
                )
            )
        return leads

    def _mark_merged(self, master):
        self.write({"state": "merged", "merged_lead_id": master.id})

    # ------------------------------------------------------------------ business
    @api.model
    def _find_clusters(self, lead_domain=None):
        """Finds the duplicate clusters among the leads of `lead_domain` (all leads the
        user may read, archived ones included, when None) and replaces the clusters still
        to review that involve them. Set-based: one query groups the leads by each rule's
        keys; the clusters are the connected groups, pairs marked as not duplicates kept
        apart. Returns the number of clusters found."""
        Lead = self.env["crm.lead"].with_context(active_test=False)
        Lead.flush_model()
        self.flush_model()
        scope = Lead._search(lead_domain or [])
        groups = self.env.execute_query(self._duplicate_groups_query(scope))
        exclusions = self._exclusions_by_lead(scope)
        clusters = self._connect(groups, exclusions)
        self._replace_open_clusters(scope, clusters)
        _logger.info("Duplicate leads: %s clusters found", len(clusters))
        return len(clusters)

    def _duplicate_groups_query(self, scope):
        """(rule index, company id, sorted lead ids) for each set of 2+ leads sharing one
        rule's keys."""
        per_rule = []
        for index, (keys, _confidence, _bits) in enumerate(DUPLICATE_RULES):
            columns = [SQL.identifier(key) for key in keys]
            per_rule.append(
                SQL(
                    """SELECT %(index)s, company_id, array_agg(id ORDER BY id)
                         FROM scope WHERE %(not_null)s
                     GROUP BY company_id, %(columns)s HAVING count(*) > 1 %(consistent)s""",
                    index=index,
                    consistent=SQL("AND count(DISTINCT company_match_key) <= 1")
                    if index in RULES_WITHOUT_COMPANY_CONFLICT
                    else SQL(),
                    not_null=SQL(" AND ").join(SQL("%s IS NOT NULL", column) for column in columns),
                    columns=SQL(", ").join(columns),
                )
            )
        return SQL(
            """WITH scope AS MATERIALIZED (
                   SELECT id, company_id, email_match_key, phone_match_key, company_match_key,
                          contact_match_key, domain_match_key
                     FROM crm_lead WHERE id IN (%(scope)s))
               %(groups)s""",
            scope=scope.subselect(),
            groups=SQL(" UNION ALL ").join(per_rule),
        )

    def _exclusions_by_lead(self, scope):
        rows = self.env.execute_query(
            SQL(
                """SELECT lead_low_id, lead_high_id FROM crm_lead_duplicate_exclusion
                    WHERE lead_low_id IN (%(scope)s) OR lead_high_id IN (%(scope)s)""",
                scope=scope.subselect(),
            )
        )
        exclusions = {}
        for low, high in rows:
            exclusions.setdefault(low, set()).add(high)
            exclusions.setdefault(high, set()).add(low)
        return exclusions

    @api.model
    def _connect(self, groups, exclusions):
        """Connected groups of leads, strongest links first: [(company id, lead ids,
        confidence, reason bits)]. A link that would put two leads marked as not
        duplicates in one cluster is not made."""
        parent, members, confidence, bits, company = {}, {}, {}, {}, {}

        def root(lead_id):
            while parent.get(lead_id, lead_id) != lead_id:
                parent[lead_id] = parent.get(parent[lead_id], parent[lead_id])
                lead_id = parent[lead_id]
            return lead_id

        for rule_index, company_id, lead_ids in sorted(groups, key=lambda row: row[0]):
            _keys, rule_confidence, rule_bits = DUPLICATE_RULES[rule_index]
            if any(lead_id in exclusions for lead_id in lead_ids):
                links = combinations(lead_ids, 2)
            else:
                links = ((lead_ids[0], other) for other in lead_ids[1:])
            for left, right in links:
                left_root, right_root = root(left), root(right)
                if left_root == right_root:
                    bits[left_root] |= rule_bits
                    continue
                left_members = members.get(left_root, [left_root])
                right_members = members.get(right_root, [right_root])
                if exclusions and any(
                    exclusions.get(lead_id, set()).intersection(right_members)
                    for lead_id in left_members
                ):
                    continue
                if len(left_members) < len(right_members):
                    left_root, right_root = right_root, left_root
                    left_members, right_members = right_members, left_members
                parent[right_root] = left_root
                members[left_root] = left_members + right_members
                members.pop(right_root, None)
                confidence[left_root] = min(
                    rule_confidence,
                    confidence.get(left_root, 100),
                    confidence.pop(right_root, 100),
                )
                bits[left_root] = bits.get(left_root, 0) | bits.pop(right_root, 0) | rule_bits
                company[left_root] = company_id
        return [
            (company[lead_root], sorted(lead_ids), confidence[lead_root], bits[lead_root])
            for lead_root, lead_ids in members.items()
        ]

    def _replace_open_clusters(self, scope, clusters):
        cr = self.env.cr
        cr.execute(
            SQL(
                """DELETE FROM crm_lead_duplicate_cluster c
                    WHERE c.state = 'open'
                      AND EXISTS (SELECT FROM crm_lead_duplicate_cluster_lead_rel r
                                   WHERE r.cluster_id = c.id AND r.lead_id IN (%s))""",
                scope.subselect(),
            )
        )
        now = fields.Datetime.now()
        for start in range(0, len(clusters), CLUSTER_INSERT_BATCH):
            batch = clusters[start : start + CLUSTER_INSERT_BATCH]
            cluster_ids = [
                cluster_id
                for (cluster_id,) in self.env.execute_query(
                    SQL(
                        "SELECT nextval('crm_lead_duplicate_cluster_id_seq') "
                        "FROM generate_series(1, %s)",
                        len(batch),
                    )
                )
            ]
            cr.execute(
                SQL(
                    """INSERT INTO crm_lead_duplicate_cluster
                              (id, company_id, lead_count, confidence, reason_bits, state,
                               create_uid, create_date, write_uid, write_date)
                       VALUES %s""",
                    SQL(", ").join(
                        SQL(
                            "(%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s)",
                            cluster_id,
                            company_id or None,
                            len(lead_ids),
                            cluster_confidence,
                            reason_bits,
                            self.env.uid,
                            now,
                            self.env.uid,
                            now,
                        )
                        for cluster_id, (
                            company_id,
                            lead_ids,
                            cluster_confidence,
                            reason_bits,
                        ) in zip(cluster_ids, batch)
                    ),
                )
            )
            cr.execute(
                SQL(
                    "INSERT INTO crm_lead_duplicate_cluster_lead_rel (cluster_id, lead_id) "
                    "SELECT * FROM unnest(%s::int[], %s::int[])",
                    [
                        cluster_id
                        for cluster_id, (_c, lead_ids, _f, _b) in zip(cluster_ids, batch)
                        for _lead in lead_ids
                    ],
                    [lead_id for _c, lead_ids, _f, _b in batch for lead_id in lead_ids],
                )
            )
        self.invalidate_model()

    # ------------------------------------------------------------------ crons
    @api.model
    def _cron_find_duplicates(self):
        found = self._find_clusters()
        self.env["ir.cron"]._notify_progress(done=found, remaining=0)
