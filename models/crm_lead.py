import logging
import threading
from collections import defaultdict
from datetime import timedelta

from markupsafe import Markup, escape

from odoo import api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from .match_keys import MATCH_KEY_FIELDS, lead_keys

_logger = logging.getLogger(__name__)

# Fields whose change may change a lead's learned part.
SCORE_FACTOR_FIELDS = frozenset(
    {"source_id", "team_id", "user_id", "stage_id", "tag_ids", "company_id", "active"}
)
QUALIFICATION_FIELDS = frozenset(
    {
        "is_budget_confirmed",
        "has_decision_maker",
        "purchase_timeline",
        "has_pain_point",
        "employee_count",
    }
)
# Fields a score is recomputed on when they change; fields read by custom criteria are
# added at write time (see write()).
SCORE_STATIC_DEPENDS = tuple(
    sorted(
        QUALIFICATION_FIELDS
        | SCORE_FACTOR_FIELDS
        | {"expected_revenue", "country_id", "type", "probability", "partner_id"}
    )
)
# Learned factors looked up for a lead: (crm.lead.scoring.factor variable, column of the
# scoring query's `target`). Tags, many per lead, are summed apart.
SCORE_FACTOR_COLUMNS = (
    ("source", "source_id"),
    ("team", "team_id"),
    ("user", "user_id"),
    ("stage", "stage_id"),
    ("age", "age_bucket"),
)
SCORE_BATCH_SIZE = 100000
SCORE_BATCH_WORK_MEM = "64MB"
# Database connections the nightly rescoring shares its batches between.
SCORE_WORKERS = 2
# What a bulk rescoring changes behind the ORM, to drop from the cache.
SCORE_CACHED_FIELDS = (
    "score",
    "score_rule",
    "score_learned",
    "score_details",
    "score_explanation",
    "priority",
)
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
    # the period (0.93 s → 0.17 s for the 71,557 leads of one salesperson among 1M). One
    # index for both dates: each more index slows every rewrite of crm_lead's rows.
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
# Opportunities handled per call of the follow-up and escalation crons; the cron runs
# again at once while some are left (ir.cron's progress API), each call in its own
# transaction.
STALE_BATCH_SIZE = 1000
# Messages that count as news on a deal: written by a person, or an activity done.
NEWS_MESSAGE_TYPES = ("comment", "email", "email_outgoing")
# Why two leads look alike: bits combined by the similar-leads query and the cluster rules.
MATCH_EMAIL = 1
MATCH_PHONE = 2
MATCH_COMPANY = 4
MATCH_CONTACT = 8
MATCH_DOMAIN = 16
MATCH_FUZZY_COMPANY = 32
# Company names this alike (pg_trgm similarity) are shown as similar leads.
FUZZY_COMPANY_SIMILARITY = 0.6
MATCH_KEY_BATCH_SIZE = 20000
# Bounds of the win likelihood's log-odds, so that exp() never overflows.
MAX_LOG_ODDS = 30


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # Qualification facts a salesperson ticks or fills in.
    is_budget_confirmed = fields.Boolean(
        string="Budget Confirmed", help="The customer confirmed a budget for this purchase."
    )
    has_decision_maker = fields.Boolean(
        string="Decision Maker Identified",
        help="We talk to someone who decides the purchase (C-level or VP).",
    )
    purchase_timeline = fields.Selection(
        [
            ("90_days", "Within 90 days"),
            ("6_months", "Within 6 months"),
            ("later", "Later than 6 months"),
        ],
    )
    has_pain_point = fields.Boolean(
        string="Pain Point Identified",
        help="The customer has a current pain: a competitor they are unhappy with, "
        "a process that hurts.",
    )
    employee_count = fields.Integer(string="Employees", help="Size of the customer's company.")

    # The score and its parts: computed for the records at hand in one query
    # (_compute_score), or for all open leads behind the ORM (_update_all_scores).
    score = fields.Integer(
        compute="_compute_score",
        store=True,
        index=True,
        copy=False,
        aggregator="avg",
        help="0–100: qualification criteria blended with the win likelihood learned from "
        "the company's won and lost history.",
    )
    score_rule = fields.Integer(
        string="Qualification Points", compute="_compute_score", store=True, copy=False
    )
    score_learned = fields.Integer(
        string="Learned Win Likelihood (%)", compute="_compute_score", store=True, copy=False
    )
    score_details = fields.Json(compute="_compute_score", store=True, copy=False)
    # crm's stars, now following the score unless set by hand.
    priority = fields.Selection(
        compute="_compute_priority", store=True, readonly=False, default=None
    )
    score_explanation = fields.Html(compute="_compute_score_explanation", sanitize=False)
    is_priority_manual = fields.Boolean(
        string="Stars Set by Hand",
        copy=False,
        help="The stars were set by hand and no longer follow the score.",
    )
    score_priority_rule = fields.Char(compute="_compute_score_priority_rule")

    # Time in stage against the stage's expected duration, and staleness. Computed from
    # stored dates of the records at hand (no query per card); searchable.
    days_in_stage = fields.Integer(
        compute="_compute_stage_sla",
        search="_search_days_in_stage",
        help="Whole days (24-hour periods) since the opportunity entered its stage.",
    )
    sla_state = fields.Selection(
        [("on_track", "On Track"), ("at_risk", "At Risk"), ("overdue", "Overdue")],
        string="Stage SLA",
        compute="_compute_stage_sla",
        search="_search_sla_state",
        help="Against the stage's expected duration: at risk from three quarters of its "
        "maximum, overdue past it. Empty when the stage has no time limit.",
    )
    is_stale = fields.Boolean(
        string="Stale",
        compute="_compute_is_stale",
        search="_search_is_stale",
        help="Open opportunity with no planned activity and no news (update, message, "
        "activity done) for more than the team's stale delay.",
    )
    date_stale = fields.Datetime(
        string="Found Stale On",
        copy=False,
        readonly=True,
        help="When the follow-up job last found the opportunity stale and followed it up.",
    )
    date_escalated = fields.Datetime(string="Escalated On", copy=False, readonly=True)
    is_escalated = fields.Boolean(
        string="Escalated",
        compute="_compute_is_escalated",
        store=True,
        copy=False,
        help="Overdue in its current stage: the team leader was notified and the "
        "opportunity got one more star.",
    )

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
        # The stale selection's range: open opportunities by last update.
        tools.create_index(
            self.env.cr,
            "crm_lead_open_opportunity_write_date_index",
            self._table,
            ["write_date"],
            where="active AND type = 'opportunity'",
        )
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

    @api.depends(*SCORE_STATIC_DEPENDS)
    def _compute_score(self):
        values = self._score_values()
        for lead in self:
            row = values.get(lead.id) or lead._score_values_in_memory()
            lead.score, lead.score_rule, lead.score_learned, lead.score_details = row[:4]

    def _score_values_in_memory(self):
        """The qualification part for a lead not saved yet (live in the form)."""
        matched = [
            [criterion["id"], criterion["points"]]
            for criterion in self._score_criteria()
            if criterion["company_id"] in (False, self.company_id.id)
            and criterion["team_id"] in (False, self.team_id.id)
            and self.filtered_domain(criterion["domain"])
        ]
        rule = max(0, min(100, sum(points for _id, points in matched)))
        details = {"criteria": matched, "rule": rule, "learned": None, "weight": 0}
        return rule, rule, 0, details

    @api.depends("score", "is_priority_manual", "is_escalated")
    def _compute_priority(self):
        for lead in self:
            if lead.is_priority_manual:
                lead.priority = lead.priority or "0"
                continue
            company = lead.company_id or self.env.company
            thresholds = (
                company.score_threshold_three_stars,
                company.score_threshold_two_stars,
                company.score_threshold_one_star,
            )
            stars = next(
                (stars for stars, bound in zip("321", thresholds) if lead.score > bound), "0"
            )
            lead.priority = str(min(3, int(stars) + 1)) if lead.is_escalated else stars

    @api.depends("score_details")
    @api.depends_context("lang")
    def _compute_score_explanation(self):
        criterion_ids = {
            criterion_id
            for lead in self
            for criterion_id, _points in (lead.score_details or {}).get("criteria", [])
        }
        # sudo: the names of the criteria that scored a lead the reader sees, even those of
        # another team or archived since.
        names = dict(
            self.env["crm.lead.scoring.criterion"]
            .sudo()
            .with_context(active_test=False)
            .browse(criterion_ids)
            .exists()
            .mapped(lambda criterion: (criterion.id, criterion.name))
        )
        for lead in self:
            lead.score_explanation = lead._render_score_explanation(names)

    def _render_score_explanation(self, criterion_names):
        details = self.score_details
        if not details:
            return False
        lines = [
            self.env._(
                "%(points)+d %(criterion)s",
                points=points,
                criterion=criterion_names.get(criterion_id, self.env._("(deleted criterion)")),
            )
            for criterion_id, points in details.get("criteria", [])
        ]
        if not lines:
            lines.append(self.env._("No qualification criterion matches yet."))
        lines.append(self.env._("Qualification: %(rule)s / 100", rule=details["rule"]))
        learned = details.get("learned")
        if learned is None:
            lines.append(
                self.env._(
                    "No won or lost history to learn from yet: the score is the qualification."
                )
            )
        else:
            weight = details["weight"]
            lines.append(
                self.env._(
                    "Learned from this company's won and lost deals: %(learned)s %% win "
                    "likelihood (source, tags, team, salesperson, stage, age).",
                    learned=learned,
                )
            )
            lines.append(
                self.env._(
                    "Score = %(rule_weight)s %% × %(rule)s + %(weight)s %% × %(learned)s = "
                    "%(score)s",
                    rule_weight=100 - weight,
                    rule=details["rule"],
                    weight=weight,
                    learned=learned,
                    score=self.score,
                )
            )
        return Markup("<br/>").join(escape(line) for line in lines)

    @api.depends("is_priority_manual", "company_id")
    @api.depends_context("lang")
    def _compute_score_priority_rule(self):
        for lead in self:
            company = lead.company_id or self.env.company
            if lead.is_priority_manual:
                lead.score_priority_rule = self.env._("Stars set by hand")
            else:
                lead.score_priority_rule = self.env._(
                    "Stars follow the score: one above %(one)s, two above %(two)s, "
                    "three above %(three)s",
                    one=company.score_threshold_one_star,
                    two=company.score_threshold_two_stars,
                    three=company.score_threshold_three_stars,
                )

    @api.depends("date_last_stage_update", "stage_id", "type", "active")
    def _compute_stage_sla(self):
        now = fields.Datetime.now()
        for lead in self:
            if not lead.date_last_stage_update or lead.type != "opportunity":
                lead.days_in_stage, lead.sla_state = 0, False
                continue
            days = max(0, (now - lead.date_last_stage_update).days)
            limit = lead.stage_id.expected_days_max
            lead.days_in_stage = days
            if not lead.active or lead.stage_id.is_won or not limit:
                lead.sla_state = False
            elif days > limit:
                lead.sla_state = "overdue"
            elif days * 4 >= limit * 3:
                lead.sla_state = "at_risk"
            else:
                lead.sla_state = "on_track"

    def _search_days_in_stage(self, operator, value):
        if operator not in ("=", "!=", "<", "<=", ">", ">=") or not isinstance(value, int):
            return NotImplemented
        now = fields.Datetime.now()

        def entered_before(days):  # "at least `days` whole days in stage"
            return ("date_last_stage_update", "<=", now - timedelta(days=days))

        def entered_after(days):  # "fewer than `days` whole days in stage"
            return ("date_last_stage_update", ">", now - timedelta(days=days))

        domain = {
            ">": [entered_before(value + 1)],
            ">=": [entered_before(value)],
            "<": [entered_after(value)],
            "<=": [entered_after(value + 1)],
            "=": [entered_before(value), entered_after(value + 1)],
            "!=": ["|", entered_after(value), entered_before(value + 1)],
        }[operator]
        return [("type", "=", "opportunity"), *domain]

    def _search_sla_state(self, operator, value):
        if operator not in ("=", "!=", "in", "not in"):
            return NotImplemented
        states = [value] if operator in ("=", "!=") else list(value)
        positive = operator in ("=", "in")
        if False in states or None in states:  # "no SLA" is what no state covers
            positive = not positive
            states = [s for s in ("on_track", "at_risk", "overdue") if s not in states]
        query = self._sla_state_query(fields.Datetime.now(), [s for s in states if s])
        return [("id", "in" if positive else "not in", query)]

    @api.model
    def _sla_state_query(self, now, states):
        """SELECT of the ids of open opportunities whose stage SLA state is in `states`,
        mirroring _compute_stage_sla on indexed columns."""
        days = SQL("FLOOR(EXTRACT(EPOCH FROM (%s - l.date_last_stage_update)) / 86400)", now)
        conditions = {
            "overdue": SQL("%s > s.expected_days_max", days),
            "at_risk": SQL(
                "%s <= s.expected_days_max AND %s * 4 >= s.expected_days_max * 3", days, days
            ),
            "on_track": SQL("%s * 4 < s.expected_days_max * 3", days),
        }
        if not states:
            return SQL("(SELECT NULL::int WHERE FALSE)")
        return SQL(
            """(SELECT l.id FROM crm_lead l JOIN crm_stage s ON s.id = l.stage_id
                 WHERE l.active AND l.type = 'opportunity' AND s.is_won IS NOT TRUE
                   AND s.expected_days_max > 0 AND (%s))""",
            SQL(" OR ").join(conditions[state] for state in states),
        )

    def _compute_is_stale(self):
        ids = tuple(id_ for id_ in self.ids if id_)
        stale = set()
        if ids:
            self.flush_recordset(["write_date", "active", "type", "stage_id", "team_id"])
            self.env.cr.execute(
                SQL("%s AND l.id IN %s", self._stale_query(fields.Datetime.now()), ids)
            )
            stale = {row[0] for row in self.env.cr.fetchall()}
        for lead in self:
            lead.is_stale = lead.id in stale

    def _search_is_stale(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            return NotImplemented
        positive = (operator == "=") == value
        query = SQL("(%s)", self._stale_query(fields.Datetime.now()))
        return [("id", "in" if positive else "not in", query)]

    @api.depends("date_escalated", "date_last_stage_update")
    def _compute_is_escalated(self):
        for lead in self:
            lead.is_escalated = bool(
                lead.date_escalated
                and lead.date_last_stage_update
                and lead.date_escalated >= lead.date_last_stage_update
            )

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
                    lead._match_country_codes(),
                )
            )

    def _match_country_codes(self):
        """Countries a phone number typed without its prefix is read in: the lead's, its
        company's, its salesperson's, the current company's."""
        return (
            self.country_id.code,
            self.company_id.country_id.code,
            self.user_id.country_id.code,
            self.env.company.country_id.code,
        )

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
        _ = self.env._
        return {
            MATCH_EMAIL: _("Same email"),
            MATCH_PHONE: _("Same phone"),
            MATCH_COMPANY: _("Same company name"),
            MATCH_FUZZY_COMPANY: _("Similar company name"),
            MATCH_CONTACT: _("Same contact name"),
            MATCH_DOMAIN: _("Same internet domain"),
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

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_qualification_input(vals)
            if vals.get("priority") not in (None, False, "0") and "is_priority_manual" not in vals:
                vals["is_priority_manual"] = True
        return super().create(vals_list)

    def write(self, vals):
        if "stage_id" in vals and len(self) > 1:
            # crm restarts the stage clock of every lead written as soon as one of them
            # changes stage: write the leads already in that stage apart, so they keep it.
            unchanged = self.filtered(lambda lead: lead.stage_id.id == vals["stage_id"])
            if unchanged and unchanged != self:
                return unchanged.write(vals) and (self - unchanged).write(vals)
        self._check_qualification_input(vals)
        if "priority" in vals and "is_priority_manual" not in vals:
            vals = dict(vals, is_priority_manual=True)
        res = super().write(vals)
        if (self._score_trigger_fields() - set(SCORE_STATIC_DEPENDS)) & set(vals):
            # A custom criterion reads this field: recompute at the next flush, in batch.
            for fname in ("score", "score_rule", "score_learned", "score_details"):
                self.env.add_to_compute(self._fields[fname], self)
        return res

    @api.model
    def _check_qualification_input(self, vals):
        """Qualification facts often come from web forms and integrations through the
        external API: refuse a wrong type with a message naming the fact, rather than a
        database or conversion error."""
        _ = self.env._
        for fname in QUALIFICATION_FIELDS & set(vals):
            value, field = vals[fname], self._fields[fname]
            if field.type == "boolean":
                valid = value in (True, False, None, 0, 1)
            elif field.type == "integer":
                valid = value in (False, None) or (
                    isinstance(value, int) and not isinstance(value, bool) and value >= 0
                )
            else:
                valid = value in (False, None) or (
                    isinstance(value, str) and value in dict(field._description_selection(self.env))
                )
            if not valid:
                raise ValidationError(
                    _(
                        "“%(value)s” is not a valid value for %(fact)s.",
                        value=value,
                        fact=field._description_string(self.env),
                    )
                )

    # ------------------------------------------------------------------ actions
    def action_reset_priority_automatic(self):
        self.check_access("write")
        self.write({"is_priority_manual": False})
        return True

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
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Merge Duplicates"),
            "res_model": "crm.lead.merge.cluster",
            "view_mode": "form",
            "target": "new",
            "context": {
                "active_model": "crm.lead",
                "active_ids": (self + self.similar_lead_ids).ids,
            },
        }

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

    def _update_scores(self):
        """Rescores these leads now, in one query (behind the ORM)."""
        if self:
            self._update_scores_where(
                SQL("crm_lead.id IN %s", tuple(self.ids)), [("id", "in", self.ids)]
            )

    # ------------------------------------------------------------------ scoring
    @api.model
    @tools.ormcache()
    def _score_trigger_fields(self):
        """Fields whose change may change a lead's score: qualification facts, the learned
        part's factors, and every field a criterion's condition reads."""
        names = set(QUALIFICATION_FIELDS | SCORE_FACTOR_FIELDS)
        for criterion in self._score_criteria():
            for leaf in criterion["domain"]:
                if isinstance(leaf, list | tuple) and isinstance(leaf[0], str):
                    names.add(leaf[0].split(".")[0])
        return frozenset(names)

    @api.model
    @tools.ormcache()
    def _score_criteria(self):
        # sudo: scores must not depend on who triggers them. Criteria are a handful of rows.
        criteria = self.env["crm.lead.scoring.criterion"].sudo().search([])  # pylint: disable=no-search-all
        return tuple(
            {
                "id": criterion.id,
                "points": criterion.points,
                "domain": criterion._get_domain(),
                "company_id": criterion.company_id.id,
                "team_id": criterion.team_id.id,
            }
            for criterion in criteria
        )

    @api.model
    def _trigger_score_recompute(self):
        """Criteria or settings changed: rescore every open lead in the background."""
        self.env.registry.clear_cache()
        cron = self.env.ref(
            "crm_pipeline_optimizer.ir_cron_crm_lead_scoring", raise_if_not_found=False
        )
        if cron:
            cron._trigger()

    @api.model
    def _score_query(self, target, target_domain):
        """The CTEs computing, for the leads matching `target` (SQL on `crm_lead`) and
        `target_domain`, the score, its parts and automatic stars: a CTE `scored` with the
        new values (score, rule_score, learned, weight, signature, stars, auto_priority), the
        stored ones (old_*) and one flag per criterion (m0, m1…) for `_score_details_sql`.
        Criteria are evaluated as sudo: a score must not depend on who triggers it."""
        Lead = self.sudo().with_context(active_test=False)
        flags, points, signature = [], [], []
        for index, criterion in enumerate(self._score_criteria()):
            condition = self._score_criterion_condition(Lead, criterion["domain"], target_domain)
            if criterion["company_id"]:
                condition = SQL(
                    "%s AND crm_lead.company_id = %s", condition, criterion["company_id"]
                )
            if criterion["team_id"]:
                condition = SQL("%s AND crm_lead.team_id = %s", condition, criterion["team_id"])
            flag = SQL.identifier(f"m{index}")
            flags.append(SQL("COALESCE((%s), FALSE) AS %s", condition, flag))
            points.append(SQL("CASE WHEN t.%s THEN %s ELSE 0 END", flag, criterion["points"]))
            signature.append(
                SQL(
                    "CASE WHEN t.%s THEN %s END",
                    flag,
                    f"{criterion['id']}:{criterion['points']}",
                )
            )
        return SQL(
            """
            WITH target AS MATERIALIZED (
                SELECT crm_lead.id, crm_lead.company_id,
                       COALESCE(crm_lead.company_id, 0) AS company_key,
                       crm_lead.source_id, crm_lead.team_id, crm_lead.user_id,
                       crm_lead.stage_id,
                       CASE WHEN crm_lead.create_date < now() - interval '180 days' THEN 3
                            WHEN crm_lead.create_date < now() - interval '90 days' THEN 2
                            WHEN crm_lead.create_date < now() - interval '30 days' THEN 1
                            ELSE 0 END AS age_bucket,
                       crm_lead.score AS old_score, crm_lead.score_rule AS old_rule,
                       crm_lead.score_learned AS old_learned,
                       crm_lead.score_details ->> 'signature' AS old_signature,
                       crm_lead.priority AS old_priority,
                       COALESCE(crm_lead.is_priority_manual, FALSE) AS is_priority_manual,
                       COALESCE(crm_lead.is_escalated, FALSE) AS is_escalated
                       %(flags)s
                  FROM crm_lead
                 WHERE %(target)s
            ), lead_tags AS MATERIALIZED (
                SELECT t.id AS lead_id, t.company_key, rel.tag_id
                  FROM target t JOIN crm_tag_rel rel ON rel.lead_id = t.id
            ), tag_factors AS MATERIALIZED (
                SELECT COALESCE(company_id, 0) AS company_key, value AS tag_id,
                       log_odds::float8 AS log_odds
                  FROM crm_lead_scoring_factor WHERE variable = 'tag'
            ), tags AS MATERIALIZED (
                SELECT lead_tags.lead_id, SUM(factor.log_odds) AS log_odds
                  FROM lead_tags
                  JOIN tag_factors factor
                    ON factor.tag_id = lead_tags.tag_id
                   AND factor.company_key = lead_tags.company_key
              GROUP BY lead_tags.lead_id
            ), parts AS MATERIALIZED (
                SELECT t.*,
                       LEAST(100, GREATEST(0, 0 %(points)s)) AS rule_score,
                       CASE WHEN base.id IS NOT NULL THEN round(100 / (1 + exp(-LEAST(
                           %(max_log_odds)s, GREATEST(-%(max_log_odds)s,
                           base.log_odds::float8 %(factor_log_odds)s
                           + COALESCE(tags.log_odds, 0))))))::int END AS learned,
                       COALESCE(company.score_learned_weight, 30) AS weight,
                       COALESCE(company.score_threshold_one_star, 25) AS one_star,
                       COALESCE(company.score_threshold_two_stars, 50) AS two_stars,
                       COALESCE(company.score_threshold_three_stars, 75) AS three_stars,
                       concat_ws(',', COALESCE(company.score_learned_weight, 30)::text
                                 %(signature)s) AS signature
                  FROM target t
             LEFT JOIN crm_lead_scoring_factor base
                    ON COALESCE(base.company_id, 0) = t.company_key
                   AND base.variable = 'base'
             %(factor_joins)s
             LEFT JOIN tags ON tags.lead_id = t.id
             LEFT JOIN res_company company ON company.id = t.company_id
            ), with_score AS (
                SELECT p.*,
                       CASE WHEN p.learned IS NULL THEN p.rule_score
                            -- rounded half up, in integers (numeric is slow in bulk)
                            ELSE ((100 - p.weight) * p.rule_score + p.weight * p.learned + 50)
                                 / 100 END AS score
                  FROM parts p
            ), with_stars AS (
                SELECT s.*,
                       CASE WHEN s.score > s.three_stars THEN 3
                            WHEN s.score > s.two_stars THEN 2
                            WHEN s.score > s.one_star THEN 1
                            ELSE 0 END AS star_count
                  FROM with_score s
            ), scored AS (
                SELECT s.*, s.star_count::text AS stars,
                       LEAST(3, s.star_count + CASE WHEN s.is_escalated THEN 1 ELSE 0 END)::text
                           AS auto_priority
                  FROM with_stars s
            )
            """,
            target=target,
            flags=SQL("").join(SQL(", %s", flag) for flag in flags),
            points=SQL("").join(SQL(" + %s", point) for point in points),
            signature=SQL("").join(SQL(", %s", part) for part in signature),
            max_log_odds=MAX_LOG_ODDS,
            factor_joins=SQL("\n").join(
                SQL(
                    """LEFT JOIN crm_lead_scoring_factor %(alias)s
                    ON COALESCE(%(alias)s.company_id, 0) = t.company_key
                   AND %(alias)s.variable = %(variable)s AND %(alias)s.value = %(column)s""",
                    alias=SQL.identifier(f"factor_{variable}"),
                    variable=variable,
                    column=SQL.identifier("t", column),
                )
                for variable, column in SCORE_FACTOR_COLUMNS
            ),
            factor_log_odds=SQL("").join(
                SQL(" + COALESCE(%s.log_odds::float8, 0)", SQL.identifier(f"factor_{variable}"))
                for variable, _column in SCORE_FACTOR_COLUMNS
            ),
        )

    @api.model
    def _score_details_sql(self, alias):
        """SQL: the explanation stored in `score_details` for the row `alias` of `scored`:
        the criteria matched with their points, both parts, the weight, and the signature
        the bulk rescoring compares (building JSON for every unchanged lead would cost more
        than the rescoring itself)."""
        matched = [
            SQL(
                "CASE WHEN %s THEN jsonb_build_array(%s, %s) END",
                SQL.identifier(alias, f"m{index}"),
                criterion["id"],
                criterion["points"],
            )
            for index, criterion in enumerate(self._score_criteria())
        ]
        return SQL(
            """jsonb_build_object(
                   'criteria', to_jsonb(array_remove(ARRAY[NULL::jsonb %(matched)s], NULL)),
                   'rule', %(row)s.rule_score, 'learned', %(row)s.learned,
                   'weight', %(row)s.weight, 'signature', %(row)s.signature)""",
            matched=SQL("").join(SQL(", %s", match) for match in matched),
            row=SQL.identifier(alias),
        )

    @api.model
    def _score_criterion_condition(self, Lead, domain, target_domain):
        """A criterion's condition as an SQL boolean on the row `crm_lead`: its WHERE
        clause inline when the domain needs no join (one scan evaluates every criterion),
        else a sub-query restricted to the target leads."""
        query = Lead._search(list(domain))
        if query.is_empty():
            return SQL("FALSE")
        if not query._joins and list(query._tables) == ["crm_lead"]:
            return query.where_clause if query._where_clauses else SQL("TRUE")
        return SQL(
            "crm_lead.id IN %s", Lead._search(list(domain) + list(target_domain)).subselect()
        )

    def _score_values(self):
        """{lead id: (score, rule points, learned %, details, automatic stars)}, one query."""
        ids = tuple(id_ for id_ in self.ids if id_)
        if not ids:
            return {}
        self.env["crm.lead"].flush_model(self._score_trigger_fields())
        self.env.cr.execute(
            SQL(
                "%s SELECT id, score, rule_score, learned, %s, stars FROM scored",
                self._score_query(SQL("crm_lead.id IN %s", ids), [("id", "in", list(ids))]),
                self._score_details_sql("scored"),
            )
        )
        return {row[0]: row[1:] for row in self.env.cr.fetchall()}

    @api.model
    def _update_scores_where(self, target, target_domain):
        """Rescores the leads matching `target` / `target_domain` in one statement, behind
        the ORM for speed (bulk rescoring). A lead is written when its score, its stars
        or the reasons of its score (criteria matched, weight) change: a learned
        likelihood that moved without changing the score keeps its stored value, so the
        stored explanation is always the one that gives the stored score, and relearning
        from a day of closed deals does not rewrite thousands of leads for nothing.
        write_date is left alone, since a rescoring is not an update of the deal.
        Returns (leads scored, leads changed)."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """%(query)s, updated AS (
            UPDATE crm_lead l
               SET score = s.score,
                   score_rule = s.rule_score,
                   score_learned = s.learned,
                   score_details = %(details)s,
                   priority = CASE WHEN s.is_priority_manual THEN l.priority
                                   ELSE s.auto_priority END
              FROM scored s
             WHERE l.id = s.id
               AND (s.old_score IS DISTINCT FROM s.score
                    OR s.old_rule IS DISTINCT FROM s.rule_score
                    OR (s.old_learned IS NULL) != (s.learned IS NULL)
                    OR s.old_signature IS DISTINCT FROM s.signature
                    OR (NOT s.is_priority_manual
                        AND s.old_priority IS DISTINCT FROM s.auto_priority))
         RETURNING l.id
            )
            SELECT (SELECT COUNT(*) FROM target), (SELECT COUNT(*) FROM updated)""",
                query=self._score_query(target, target_domain),
                details=self._score_details_sql("s"),
            )
        )
        scored, updated = self.env.cr.fetchone()
        self.env["crm.lead"].invalidate_model(SCORE_CACHED_FIELDS)
        return scored, updated

    @api.model
    def _score_batch_settings(self):
        """For this transaction only (each batch commits in the cron): no JIT, since the
        row estimates of joined CTEs are far too high and PostgreSQL would spend seconds
        compiling a query that runs in less; enough memory to group a batch's tags
        without spilling to disk."""
        self.env.cr.execute(SQL("SET LOCAL jit = off"))
        self.env.cr.execute(SQL("SET LOCAL work_mem = %s", SCORE_BATCH_WORK_MEM))

    @api.model
    def _update_all_scores(self, commit=False):
        """Relearns the factors, then rescores every open lead in batches of ids, never
        holding more than one batch's ids in memory. Returns (leads seen, leads changed).
        With `commit` (the cron), the history is read and the batches are scored on
        SCORE_WORKERS database connections at once, each batch committed on its own."""
        Factor = self.env["crm.lead.scoring.factor"]
        self.env.cr.execute(SQL("SELECT MAX(id) FROM crm_lead"))
        max_id = self.env.cr.fetchone()[0] or 0
        # Batches are id ranges of at most SCORE_BATCH_SIZE leads: the criteria's
        # sub-queries then scan an index range instead of matching a long list of ids,
        # and no id is ever loaded here.
        batches = [
            (first_id, first_id + SCORE_BATCH_SIZE - 1)
            for first_id in range(1, max_id + 1, SCORE_BATCH_SIZE)
        ]
        if not commit:
            self._score_batch_settings()
            Factor._rebuild()
            return self._score_batches(batches)
        self.env.flush_all()
        self.env.cr.commit()  # pylint: disable=invalid-commit
        history = self._run_on_connections(
            [(Factor._name, "_closed_deal_groups", ()), (Factor._name, "_closed_deal_tags", ())]
        )
        Factor._rebuild(history)
        self.env.cr.commit()  # pylint: disable=invalid-commit
        scored = self._run_on_connections(
            [(self._name, "_score_batches", ([batch], True)) for batch in batches]
        )
        self.invalidate_model(SCORE_CACHED_FIELDS)
        return sum(seen for seen, _changed in scored), sum(changed for _seen, changed in scored)

    @api.model
    def _score_batches(self, batches, commit=False):
        """Rescores the open leads of each (first id, last id) batch; (seen, changed)."""
        open_leads = SQL("crm_lead.active AND COALESCE(crm_lead.probability, 0) < 100")
        seen = changed = 0
        for first_id, last_id in batches:
            self._score_batch_settings()
            scored, updated = self._update_scores_where(
                SQL("%s AND crm_lead.id BETWEEN %s AND %s", open_leads, first_id, last_id),
                [("id", ">=", first_id), ("id", "<=", last_id)],
            )
            seen += scored
            changed += updated
            if commit:
                # Each batch is whole and idempotent: a crash loses no work already
                # committed, and the next run redoes the rest.
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return seen, changed

    @api.model
    def _run_on_connections(self, jobs):
        """Runs the jobs (model name, method name, arguments) on SCORE_WORKERS threads,
        each with its own database connection and committing after each job; returns
        their results in order. The work is in PostgreSQL, one core per connection."""
        queue = iter(enumerate(jobs))
        lock = threading.Lock()
        results, errors = [None] * len(jobs), []

        def work():
            try:
                with self.env.registry.cursor() as cr:
                    env = self.env(cr=cr)
                    while True:
                        with lock:
                            index, (model, method, args) = next(queue, (None, (None,) * 3))
                        if index is None:
                            return
                        env["crm.lead"]._score_batch_settings()
                        results[index] = getattr(env[model], method)(*args)
                        cr.commit()
            except Exception as error:  # re-raised in the caller's thread below
                errors.append(error)

        threads = [threading.Thread(target=work) for _ in range(SCORE_WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    # ------------------------------------------------------------------ stale deals
    @api.model
    def _news_since(self, since):
        """SQL: the lead `l` has news after `since` (SQL): a message written by a person
        or an activity done."""
        return SQL(
            """EXISTS (SELECT 1 FROM mail_message m
                        WHERE m.model = 'crm.lead' AND m.res_id = l.id AND m.date > %s
                          AND (m.message_type IN %s OR m.mail_activity_type_id IS NOT NULL))""",
            since,
            NEWS_MESSAGE_TYPES,
        )

    @api.model
    def _stale_query(self, now):
        """SELECT of the ids of stale opportunities (`l` is the lead): open, no planned
        activity, no update and no news for more than the stale delay of their team, else
        of their company. Whole days count, as days_in_stage does."""
        since = SQL(
            "%s - make_interval(days => COALESCE(NULLIF(t.stale_after_days, 0), "
            "c.pipeline_stale_after_days, 3) + 1)",
            now,
        )
        # The shortest delay of all, computed once by PostgreSQL (an init plan), bounds
        # write_date so that the index is used before each row's own delay is evaluated.
        shortest = SQL(
            """(SELECT LEAST(
                   (SELECT MIN(stale_after_days) FROM crm_team WHERE stale_after_days > 0),
                   (SELECT MIN(pipeline_stale_after_days) FROM res_company), 3) + 1)"""
        )
        return SQL(
            """SELECT l.id FROM crm_lead l
                 LEFT JOIN crm_stage s ON s.id = l.stage_id
                 LEFT JOIN crm_team t ON t.id = l.team_id
                 LEFT JOIN res_company c ON c.id = l.company_id
                WHERE l.active AND l.type = 'opportunity' AND s.is_won IS NOT TRUE
                  AND l.write_date <= %(now)s - interval '1 day' * %(shortest)s
                  AND l.write_date <= %(since)s
                  AND NOT EXISTS (SELECT 1 FROM mail_activity a
                                   WHERE a.res_model = 'crm.lead' AND a.res_id = l.id
                                     AND a.active)
                  AND NOT %(news)s""",
            now=now,
            since=since,
            shortest=shortest,
            news=self._news_since(since),
        )

    @api.model
    def _cron_stale_followups(self, batch_size=STALE_BATCH_SIZE):
        """Gives each stale opportunity one follow-up activity for its salesperson (else
        its team leader), one batch per call. A lead handled is stamped `date_stale`: it is
        taken again only once it had news after that (a quiet spell is followed up once,
        however often the job runs; the next quiet spell gets its own follow-up)."""
        now = fields.Datetime.now()
        self.env.flush_all()
        new_quiet_spell = SQL(
            "(l.date_stale IS NULL OR l.write_date > l.date_stale OR %s)",
            self._news_since(SQL("l.date_stale")),
        )
        leads, remaining = self._stale_lock_batch(
            SQL("%s AND %s", self._stale_query(now), new_quiet_spell), batch_size
        )
        if leads:
            activities = leads._schedule_stale_followups()
            self.env.cr.execute(
                SQL("UPDATE crm_lead SET date_stale = %s WHERE id IN %s", now, tuple(leads.ids))
            )
            leads.invalidate_recordset(["date_stale"])
            _logger.info(
                "Stale deals: %s opportunities found stale, %s follow-ups scheduled%s",
                len(leads),
                len(activities),
                ", more to do" if remaining else "",
            )
        self.env["ir.cron"]._notify_progress(done=len(leads), remaining=remaining)
        return leads

    @api.model
    def _stale_lock_batch(self, selection, batch_size):
        """The first `batch_size` leads of `selection` (SQL of ids) that no one is editing
        right now, locked for this transaction, and whether more may be left (a full
        batch). A lead being edited is skipped: the next run takes it. Not counting what is
        left spares a second pass over the selection: ir.cron only needs to know whether
        to run again."""
        self.env.cr.execute(
            SQL(
                """SELECT l.id FROM crm_lead l
                    WHERE l.id IN (%s)
                 ORDER BY l.id LIMIT %s
                      FOR NO KEY UPDATE OF l SKIP LOCKED""",
                selection,
                batch_size,
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        return self.browse(ids), int(len(ids) == batch_size)

    def _schedule_stale_followups(self):
        assignees = self._stale_assignees(
            lambda lead: lead.user_id, lambda lead: lead.team_id.user_id
        )
        default_type = self.env.ref(
            "crm_pipeline_optimizer.mail_activity_type_stale_followup", raise_if_not_found=False
        )
        lead_model_id = self.env["ir.model"]._get_id("crm.lead")
        values = []
        for lead in self:
            user = assignees.get(lead.id)
            if not user:
                continue
            company = lead.company_id or self.env.company
            activity_type = company.pipeline_followup_activity_type_id or default_type
            values.append(
                {
                    "res_model_id": lead_model_id,
                    "res_id": lead.id,
                    "activity_type_id": activity_type.id,
                    "summary": activity_type.summary
                    or self.env._("Follow up: this deal has gone quiet"),
                    "user_id": user.id,
                    "date_deadline": fields.Date.context_today(self.with_context(tz=user.tz)),
                }
            )
        # The activity itself is the notification (assignee's activity menu): no email
        # for each of possibly thousands of follow-ups.
        return (
            self.env["mail.activity"]
            .with_context(mail_activity_quick_update=True)
            .sudo()  # sudo: the cron's user may not be a salesperson; access checked below
            .create(values)
        )

    def _stale_assignees(self, *pick_users):
        """{lead id: user}: for each lead, the first of the users named by `pick_users` who
        is active, works in the lead's company and may read the lead: the crons never tell
        anyone about a record they cannot see. One access query per distinct user."""
        assignees = {}
        for pick_user in pick_users:
            leads_by_user = defaultdict(lambda: self.browse())
            for lead in self.filtered(lambda lead: lead.id not in assignees):
                user = pick_user(lead)
                if user and user.active and not user.share:
                    leads_by_user[user] |= lead
            for user, leads in leads_by_user.items():
                in_company = leads.filtered(
                    lambda lead, user=user: (
                        not lead.company_id or lead.company_id in user.company_ids
                    )
                )
                readable = (
                    in_company.with_user(user)
                    .with_context(allowed_company_ids=user.company_ids.ids)
                    ._filtered_access("read")
                )
                assignees.update(dict.fromkeys(readable.ids, user))
        return assignees

    @api.model
    def _overdue_query(self, now):
        """SELECT of the ids of open opportunities past their stage's maximum days and
        not yet escalated during this stage visit."""
        return SQL(
            """SELECT l.id FROM crm_lead l JOIN crm_stage s ON s.id = l.stage_id
                WHERE l.active AND l.type = 'opportunity' AND s.is_won IS NOT TRUE
                  AND s.expected_days_max > 0
                  AND l.date_last_stage_update
                      <= %s - make_interval(days => s.expected_days_max + 1)
                  AND NOT COALESCE(l.is_escalated, FALSE)""",
            now,
        )

    @api.model
    def _cron_escalate_overdue(self, batch_size=STALE_BATCH_SIZE):
        """Escalates opportunities overdue in their stage, once per stage visit: one more
        star (three at most), a message in the chatter, an activity for the team leader."""
        now = fields.Datetime.now()
        self.env.flush_all()
        leads, remaining = self._stale_lock_batch(self._overdue_query(now), batch_size)
        if leads:
            leaders = leads._stale_assignees(lambda lead: lead.team_id.user_id)
            leads._notify_escalation(leaders)
            # Behind the ORM: an escalation is not news on the deal (write_date stays).
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_lead
                          SET date_escalated = %s, is_escalated = TRUE,
                              priority = LEAST(3, COALESCE(priority, '0')::int + 1)::text
                        WHERE id IN %s""",
                    now,
                    tuple(leads.ids),
                )
            )
            leads.invalidate_recordset(["date_escalated", "is_escalated", "priority"])
            _logger.info(
                "Stale deals: %s opportunities escalated%s",
                len(leads),
                ", more to do" if remaining else "",
            )
        self.env["ir.cron"]._notify_progress(done=len(leads), remaining=remaining)
        return leads

    def _notify_escalation(self, leaders):
        activity_type = self.env.ref(
            "crm_pipeline_optimizer.mail_activity_type_stuck_deal", raise_if_not_found=False
        )
        lead_model_id = self.env["ir.model"]._get_id("crm.lead")
        bodies, activities = {}, []
        for lead in self:
            leader = leaders.get(lead.id)
            stars = min(3, int(lead.priority or 0) + 1)
            values = {
                "days": lead.days_in_stage,
                "stage": lead.stage_id.name,
                "limit": lead.stage_id.expected_days_max,
                "stars": stars,
            }
            if leader:
                bodies[lead.id] = self.env._(
                    "Escalated: %(days)s days in %(stage)s, expected at most %(limit)s. "
                    "Priority raised to %(stars)s stars; %(leader)s, team leader, was asked "
                    "to review the deal.",
                    leader=leader.name,
                    **values,
                )
                activities.append(
                    {
                        "res_model_id": lead_model_id,
                        "res_id": lead.id,
                        "activity_type_id": activity_type.id,
                        "summary": self.env._("Stuck for %(days)s days in %(stage)s", **values),
                        "user_id": leader.id,
                        "date_deadline": fields.Date.context_today(self.with_context(tz=leader.tz)),
                    }
                )
            else:
                bodies[lead.id] = self.env._(
                    "Escalated: %(days)s days in %(stage)s, expected at most %(limit)s. "
                    "Priority raised to %(stars)s stars; the sales team has no leader who "
                    "can see this deal to notify.",
                    **values,
                )
        self._message_log_batch(bodies=bodies)
        # sudo: the cron's user may not be a salesperson; leaders' access checked by
        # _stale_assignees. No email per activity: each leader gets one digest below.
        self.env["mail.activity"].with_context(mail_activity_quick_update=True).sudo().create(
            activities
        )
        self._notify_leaders_digest(leaders)

    def _notify_leaders_digest(self, leaders):
        """One message per team leader (inbox or email, as they chose) listing the deals of
        this batch escalated to them."""
        deals_by_leader = defaultdict(lambda: self.browse())
        for lead in self:
            if leaders.get(lead.id):
                deals_by_leader[leaders[lead.id]] |= lead
        for leader, deals in deals_by_leader.items():
            lines = Markup("").join(
                Markup('<li><a href="/odoo/crm/%s">%s</a>: %s</li>')
                % (
                    deal.id,
                    deal.name,
                    self.env._(
                        "%(days)s days in %(stage)s",
                        days=deal.days_in_stage,
                        stage=deal.stage_id.name,
                    ),
                )
                for deal in deals
            )
            # sudo: the digest to a leader who may read each of these deals (checked by
            # _stale_assignees), sent by the cron whatever its user's rights on mail.
            self.env["mail.thread"].sudo().message_notify(
                partner_ids=leader.partner_id.ids,
                subject=self.env._("Deals stuck in their stage: %(count)s", count=len(deals)),
                body=Markup("<p>%s</p><ul>%s</ul>")
                % (self.env._("These deals are overdue in their stage and need a review:"), lines),
            )

    @api.model
    def _fill_match_keys(self, batch_size=MATCH_KEY_BATCH_SIZE):
        """Computes the match keys of every lead, in batches of ids, behind the ORM: at
        install on a large database, without stamping write_date. Returns the number of
        leads whose keys changed."""
        self.flush_model()
        default_country = self.env.company.country_id.code
        last_id, changed = 0, 0
        while True:
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
                        WHERE l.id > %s ORDER BY l.id LIMIT %s""",
                    last_id,
                    batch_size,
                )
            )
            if not rows:
                break
            last_id = rows[-1][0]
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
                changed += len(updates)
        if changed:
            # The planner must know the new keys, or the similar-leads query scans
            # (1,000,000 leads: 4.7 s for a page of 80 before, 17 ms after).
            self.env.cr.execute("ANALYZE crm_lead")
        self.invalidate_model(list(MATCH_KEY_FIELDS))
        return changed

    # ------------------------------------------------------------------ merge
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

    # ------------------------------------------------------------------ crons
    @api.model
    def _cron_update_scores(self):
        # Commit between batches, as crm's own scoring cron does, except inside tests.
        commit = not getattr(threading.current_thread(), "testing", False)
        seen, changed = self._update_all_scores(commit=commit)
        _logger.info("Lead scoring: %s open leads rescored, %s changed", seen, changed)
        self.env["ir.cron"]._notify_progress(done=seen, remaining=0)
