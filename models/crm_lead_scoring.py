"""Lead scoring: qualification criteria blended with a win likelihood learned from the
company's history, stars that follow the score, and the bulk rescoring."""

import logging
import threading

from markupsafe import Markup, escape

from odoo import api, fields, models, tools
from odoo.tools import SQL

from ..rules import stars as star_rules
from .crm_lead import QUALIFICATION_FIELDS

_logger = logging.getLogger(__name__)

# Fields whose change may change a lead's learned part.
SCORE_FACTOR_FIELDS = frozenset(
    {"source_id", "team_id", "user_id", "stage_id", "tag_ids", "company_id", "active"}
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
# Leads scored in one query by the ORM's compute (their values are sent with it).
SCORE_VALUES_BATCH_SIZE = 5000
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
# Bounds of the win likelihood's log-odds, so that exp() never overflows.
MAX_LOG_ODDS = 30


class CrmLead(models.Model):
    """The score, its explanation and the stars."""

    _inherit = "crm.lead"

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
    score_stars = fields.Integer(
        string="Stars from the Score",
        compute="_compute_score_stars",
        help="The stars the score alone gives through the company's thresholds.",
    )

    @api.depends(*SCORE_STATIC_DEPENDS)
    def _compute_score(self):
        values = self._score_values()
        for lead in self:
            score, rule, learned, details = values[lead.id][:4]
            lead.update(
                {
                    "score": score,
                    "score_rule": rule,
                    "score_learned": learned,
                    "score_details": details,
                }
            )

    @api.depends("score", "is_priority_manual", "is_escalated", "company_id")
    def _compute_priority(self):
        for lead in self:
            if lead.is_priority_manual:
                lead.priority = lead.priority or "0"
            else:
                lead.priority = star_rules.priority(lead.score_stars, lead.is_escalated)

    @api.depends("score", "company_id")
    def _compute_score_stars(self):
        for lead in self:
            lead.score_stars = star_rules.star_count(
                lead.score, star_rules.company_thresholds(lead.company_id)
            )

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
            if lead.is_priority_manual:
                lead.score_priority_rule = self.env._("Stars set by hand")
                continue
            one, two, three = star_rules.company_thresholds(lead.company_id)
            lead.score_priority_rule = self.env._(
                "Stars follow the score: one above %(one)s, two above %(two)s, "
                "three above %(three)s",
                one=one,
                two=two,
                three=three,
            )

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("priority") not in (None, False, "0") and "is_priority_manual" not in vals:
                vals["is_priority_manual"] = True
        return super().create(vals_list)

    def write(self, vals):
        if "priority" in vals and "is_priority_manual" not in vals:
            vals = dict(vals, is_priority_manual=True)
        res = super().write(vals)
        if (self._score_trigger_fields() - set(SCORE_STATIC_DEPENDS)) & set(vals):
            # A custom criterion reads this field: recompute at the next flush, in batch.
            for fname in ("score", "score_rule", "score_learned", "score_details"):
                self.env.add_to_compute(self._fields[fname], self)
        return res

    # ------------------------------------------------------------------ actions
    # ------------------------------------------------------------------ actions
    def action_reset_priority_automatic(self):
        self.check_access("write")
        self.write({"is_priority_manual": False})
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
        """The scoring CTEs (see `_score_query_from`) for the stored leads matching `target`
        (SQL on `crm_lead`) and `target_domain`: the bulk rescoring's. Criteria are
        evaluated as sudo: a score must not depend on who triggers it."""
        Lead = self.sudo().with_context(active_test=False)
        flags = []
        for index, criterion in enumerate(self._score_criteria()):
            condition = self._score_criterion_condition(Lead, criterion["domain"], target_domain)
            if criterion["company_id"]:
                condition = SQL(
                    "%s AND crm_lead.company_id = %s", condition, criterion["company_id"]
                )
            if criterion["team_id"]:
                condition = SQL("%s AND crm_lead.team_id = %s", condition, criterion["team_id"])
            flags.append(SQL("COALESCE((%s), FALSE) AS %s", condition, SQL.identifier(f"m{index}")))
        source = SQL(
            """SELECT crm_lead.id, crm_lead.company_id, crm_lead.source_id, crm_lead.team_id,
                      crm_lead.user_id, crm_lead.stage_id, crm_lead.create_date,
                      crm_lead.score AS old_score, crm_lead.score_rule AS old_rule,
                      crm_lead.score_learned AS old_learned,
                      crm_lead.score_details ->> 'signature' AS old_signature,
                      crm_lead.priority AS old_priority,
                      COALESCE(crm_lead.is_priority_manual, FALSE) AS is_priority_manual,
                      COALESCE(crm_lead.is_escalated, FALSE) AS is_escalated
                      %s
                 FROM crm_lead
                WHERE %s""",
            SQL("").join(SQL(", %s", flag) for flag in flags),
            target,
        )
        lead_tags = SQL(
            """SELECT t.id AS lead_id, t.company_key, rel.tag_id
                 FROM target t JOIN crm_tag_rel rel ON rel.lead_id = t.id"""
        )
        return self._score_query_from(source, lead_tags)

    def _score_query_of_records(self):
        """The scoring CTEs (see `_score_query_from`) for these leads as they are in memory,
        saved or not: the ORM's compute, which so needs no flush before it. Rows are keyed
        by the records' positions in `self`; criteria are evaluated by the ORM on the
        records, as sudo."""
        leads = self.sudo().with_context(active_test=False)
        matched = [
            set(self._score_criterion_matches(leads, criterion)._ids)
            for criterion in self._score_criteria()
        ]
        rows = [
            SQL(
                "(%s, %s::int, %s::int, %s::int, %s::int, %s::int, %s::timestamp, %s::int[] %s)",
                position,
                lead.company_id.id or None,
                lead.source_id.id or None,
                lead.team_id.id or None,
                lead.user_id.id or None,
                lead.stage_id.id or None,
                lead.create_date or fields.Datetime.now(),
                [tag._origin.id for tag in lead.tag_ids if tag._origin.id],
                SQL("").join(SQL(", %s", lead.id in matched_ids) for matched_ids in matched),
            )
            for position, lead in enumerate(leads)
        ]
        flag_names = [f"m{index}" for index in range(len(matched))]
        source = SQL(
            """SELECT v.*, NULL::int AS old_score, NULL::int AS old_rule,
                      NULL::int AS old_learned, NULL::text AS old_signature,
                      NULL::varchar AS old_priority, FALSE AS is_priority_manual,
                      FALSE AS is_escalated
                 FROM (VALUES %s) AS v(id, company_id, source_id, team_id, user_id, stage_id,
                                      create_date, tag_ids %s)""",
            SQL(", ").join(rows),
            SQL("").join(SQL(", %s", SQL.identifier(name)) for name in flag_names),
        )
        lead_tags = SQL(
            "SELECT t.id AS lead_id, t.company_key, unnest(t.tag_ids) AS tag_id FROM target t"
        )
        return self._score_query_from(source, lead_tags)

    @api.model
    def _score_criterion_matches(self, leads, criterion):
        """The leads among `leads` that `criterion` scores."""
        if criterion["company_id"]:
            leads = leads.filtered(lambda lead: lead.company_id.id == criterion["company_id"])
        if criterion["team_id"]:
            leads = leads.filtered(lambda lead: lead.team_id.id == criterion["team_id"])
        return leads.filtered_domain(list(criterion["domain"])) if leads else leads

    @api.model
    def _score_query_from(self, source, lead_tags):
        """The CTEs computing the score, its parts and automatic stars of the leads that
        `source` selects (their id, company_id, source_id, team_id, user_id, stage_id,
        create_date, the stored old_* values, is_priority_manual, is_escalated and one flag
        per criterion m0, m1…), whose tags `lead_tags` lists (lead_id, company_key, tag_id
        from `target`): a CTE `scored` with the new values (score, rule_score, learned,
        weight, signature, stars, auto_priority), the stored ones and the flags, for
        `_score_details_sql`."""
        points, signature = [], []
        for index, criterion in enumerate(self._score_criteria()):
            flag = SQL.identifier(f"m{index}")
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
                SELECT source.*, COALESCE(source.company_id, 0) AS company_key,
                       CASE WHEN source.create_date < now() - interval '180 days' THEN 3
                            WHEN source.create_date < now() - interval '90 days' THEN 2
                            WHEN source.create_date < now() - interval '30 days' THEN 1
                            ELSE 0 END AS age_bucket
                  FROM (%(source)s) source
            ), lead_tags AS MATERIALIZED (
                %(lead_tags)s
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
                       %(thresholds)s,
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
                SELECT s.*, %(star_count)s AS star_count
                  FROM with_score s
            ), scored AS (
                SELECT s.*, s.star_count::text AS stars, %(auto_priority)s AS auto_priority
                  FROM with_stars s
            )
            """,
            source=source,
            lead_tags=lead_tags,
            thresholds=SQL(", ").join(
                SQL(
                    "COALESCE(company.%s, %s) AS %s",
                    SQL.identifier(fname),
                    default,
                    SQL.identifier(fname),
                )
                for fname, default in zip(
                    star_rules.THRESHOLD_FIELDS, star_rules.DEFAULT_THRESHOLDS, strict=True
                )
            ),
            star_count=star_rules.star_count_sql(
                SQL("s.score"),
                [SQL.identifier("s", fname) for fname in star_rules.THRESHOLD_FIELDS],
            ),
            auto_priority=star_rules.priority_sql(SQL("s.star_count"), SQL("s.is_escalated")),
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
        """{lead id: (score, rule points, learned %, details, automatic stars)} for these leads
        as they are in memory: one query per batch of SCORE_VALUES_BATCH_SIZE, none for a
        lead being created in a form (see _score_values_in_memory)."""
        unsaved = self.filtered(lambda lead: not lead._origin.id)
        values = {lead.id: lead._score_values_in_memory() for lead in unsaved}
        saved = self - unsaved
        for start in range(0, len(saved), SCORE_VALUES_BATCH_SIZE):
            batch = saved[start : start + SCORE_VALUES_BATCH_SIZE]
            self.env.cr.execute(
                SQL(
                    "%s SELECT id, score, rule_score, learned, %s, stars FROM scored",
                    batch._score_query_of_records(),
                    self._score_details_sql("scored"),
                )
            )
            values.update((batch[row[0]].id, row[1:]) for row in self.env.cr.fetchall())
        return values

    def _score_values_in_memory(self):
        """A lead being created in a form, scored at each change without a query: its
        qualification part, the criteria evaluated by the ORM as in _score_query_of_records;
        the learned part joins when it is saved."""
        matched = [
            [criterion["id"], criterion["points"]]
            for criterion in self._score_criteria()
            if self.sudo()._score_criterion_matches(self.sudo(), criterion)
        ]
        rule = max(0, min(100, sum(points for _id, points in matched)))
        details = {"criteria": matched, "rule": rule, "learned": None, "weight": 0}
        return rule, rule, None, details, None

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
                        # Each batch is its own transaction: a failed one rolls back
                        # alone and the next run picks it up again.
                        cr.commit()  # pylint: disable=invalid-commit
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

    # ------------------------------------------------------------------ crons
    @api.model
    def _cron_update_scores(self):
        # Commit between batches, as crm's own scoring cron does, except inside tests.
        commit = not getattr(threading.current_thread(), "testing", False)
        seen, changed = self._update_all_scores(commit=commit)
        _logger.info("Lead scoring: %s open leads rescored, %s changed", seen, changed)
        self.env["ir.cron"]._notify_progress(done=seen, remaining=0)
