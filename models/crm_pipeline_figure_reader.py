"""Reading the kept figures for the dashboard, under the reader's record rules."""

import itertools
from collections import defaultdict

from dateutil.relativedelta import relativedelta

from odoo import models
from odoo.osv import expression
from odoo.tools import SQL

from ..rules import periods, stage_flow
from .crm_lead_dashboard import DASHBOARD_SCOPE
from .crm_pipeline_dashboard import CLOSED_FIGURES, CREATED_FIGURES


class CrmPipelineFigure(models.Model):
    """The dashboard's figures from the kept figures: a UTC month (or day) is read from
    them, the hours between it and the reader's local period from the leads."""

    _inherit = "crm.pipeline.figure"

    def _dashboard(self):
        return self.env["crm.pipeline.dashboard"]

    def _reader_rules(self):
        """The reader's record rules on crm.lead as a domain on crm.pipeline.figure, which
        carries each lead's company, team and salesperson; None when a rule reads any
        other field of a lead: the dashboard then reads the leads themselves."""
        domain = self.env["ir.rule"]._compute_domain("crm.lead", "read")
        for leaf in domain:
            if isinstance(leaf, (list, tuple)) and leaf[0] not in (*DASHBOARD_SCOPE, 1, 0):
                return None
        # The figures are written by the database as the leads', activities' and
        # messages' rows change: pending changes of this transaction must reach it.
        self.env.flush_all()
        return domain

    def _reader_query(self, rules, base, domain):
        """Query of the figures of `domain` of the leads of `base` the reader may see."""
        # sudo: the reader's record rules on crm.lead are in `rules`, on the same fields.
        return (
            self.with_context(active_test=False)
            .sudo()
            ._search(expression.AND([rules, base, domain]))
        )

    def _reader_sums(self, rules, base, kind, domain, groupby, values):
        """[(*groupby, *sums of values)] of the figures of `kind` of the leads of `base`
        the reader may see; groups whose sums are all zero are left out."""
        query = self._reader_query(rules, base, [("kind", "=", kind), *domain])
        columns = [SQL.identifier(query.table, name) for name in groupby]
        sums = [SQL("SUM(%s)", SQL.identifier(query.table, name)) for name in values]
        query.groupby = SQL(", ").join(columns) if columns else None
        query.having = SQL(" OR ").join(SQL("%s <> 0", total) for total in sums)
        self.env.cr.execute(query.select(*columns, *sums))
        return self.env.cr.fetchall()

    def _lead_figures_by_utc_month(self, rules, base, months):
        """_lead_figures() of the UTC months [months[k], months[k + 1]), from the kept
        figures: one query."""
        query = self._reader_query(
            rules,
            base,
            [
                ("kind", "in", ["created", "closed"]),
                ("date", ">=", months[0].date()),
                ("date", "<", months[-1].date()),
            ],
        )
        figure = SQL.identifier(query.table)
        columns = []
        for start, end in itertools.pairwise(months):
            within = SQL("%s.date >= %s AND %s.date < %s", figure, start.date(), figure, end.date())
            created = SQL("%s.kind = 'created' AND %s", figure, within)
            won = SQL(
                """%s.kind = 'closed' AND %s AND %s.active
                   AND %s.stage_id IN (SELECT id FROM crm_stage WHERE is_won)""",
                figure,
                within,
                figure,
                figure,
            )
            lost = SQL("%s.kind = 'closed' AND %s AND %s.is_lost", figure, within, figure)
            columns += [
                SQL("SUM(%s.quantity) FILTER (WHERE %s)", figure, created),
                SQL(
                    "SUM(%s.quantity) FILTER (WHERE %s AND %s.type = 'opportunity')",
                    figure,
                    created,
                    figure,
                ),
                *(
                    SQL("SUM(%s) FILTER (WHERE %s)", SQL.identifier(query.table, value), won)
                    for value in (
                        "quantity",
                        "revenue",
                        "revenue_count",
                        "close_days",
                        "close_days_count",
                    )
                ),
                SQL("SUM(%s.quantity) FILTER (WHERE %s)", figure, lost),
                SQL("SUM(%s.done_count) FILTER (WHERE %s)", figure, won),
            ]
        self.env.cr.execute(query.select(*columns))
        row = self.env.cr.fetchone()
        names = (*CREATED_FIGURES, *CLOSED_FIGURES)
        return [
            dict(zip(names, (value or 0 for value in row[index * len(names) :]), strict=False))
            for index in range(len(months) - 1)
        ]

    @staticmethod
    def _correction_case_sql(column, corrections):
        """The correction `column`'s moment falls in."""
        return SQL(
            "CASE %s END",
            SQL(" ").join(
                SQL("WHEN %s >= %s AND %s < %s THEN %s", column, start, column, end, index)
                for index, start, end, _sign in corrections
            ),
        )

    def _lead_corrections(self, domain, field, corrections, groupby, aggregates, model="crm.lead"):
        """[(correction, *groupby, *aggregates)] of the leads (or the records of `model`)
        of `domain` whose `field` falls in the corrections' hours, aggregates being
        (function, column or None for all rows) or SQL, groupby column names or SQL: one
        query, none without corrections."""
        if not corrections:
            return []
        records = self.env[model].with_context(active_test=False)
        query = records._search(
            expression.AND(
                [
                    domain,
                    expression.OR(
                        [
                            self._dashboard()._between(field, start, end)
                            for _i, start, end, _s in corrections
                        ]
                    ),
                ]
            )
        )
        correction = self._correction_case_sql(SQL.identifier(query.table, field), corrections)
        groups = [
            correction,
            *(
                name if isinstance(name, SQL) else SQL.identifier(query.table, name)
                for name in groupby
            ),
        ]
        query.groupby = SQL(", ").join(groups)
        self.env.cr.execute(
            query.select(
                *groups,
                *(
                    aggregate
                    if isinstance(aggregate, SQL)
                    else SQL(
                        "%s(%s)",
                        SQL(aggregate[0]),
                        SQL.identifier(query.table, aggregate[1]) if aggregate[1] else SQL("*"),
                    )
                    for aggregate in aggregates
                ),
            )
        )
        return self.env.cr.fetchall()

    def _chart_rows(self, base, period, end_day):
        """_chart_rows_from_leads() from the kept figures: the last year's twelve local months
        from the UTC months nearest them and the hours between, read from the leads."""
        rules = self._reader_rules()
        days = [end_day - relativedelta(months=12 - month) for month in range(13)]
        months, corrections = periods.align_bounds(
            list(map(self._dashboard()._utc_midnight, days)), periods.nearest_utc_month
        )
        year = [("date", ">=", months[0].date()), ("date", "<", months[-1].date())]
        month_index = {month.date(): index for index, month in enumerate(months[:-1])}
        sources = self._created_by_month_and_source(rules, base, year, month_index, corrections)
        time_to_win = self._won_by_month(rules, base, year, month_index, corrections)
        lost_reasons = self._lost_by_reason(rules, base, period)
        source_of = self._dashboard()._records("utm.source", [source for _month, source in sources])
        reason_of = self._dashboard()._records("crm.lost.reason", list(lost_reasons))
        return (
            [
                (days[index], source_of[source_id], round(count))
                for (index, source_id), count in sorted(
                    sources.items(), key=lambda item: (item[0][0], item[0][1] or 0)
                )
                if round(count)
            ],
            [
                (reason_of[reason_id], round(count))
                for reason_id, count in lost_reasons.items()
                if round(count)
            ],
            [
                (days[index], total / counted if counted else None)
                for index, (count, total, counted) in sorted(time_to_win.items())
                if round(count)
            ],
        )

    def _created_by_month_and_source(self, rules, base, year, month_index, corrections):
        """{(month, source): leads created}"""
        created = defaultdict(float)
        for month, source_id, count in self._reader_sums(
            rules, base, "created", year, ["date", "source_id"], ["quantity"]
        ):
            created[(month_index[month], source_id)] += count
        live = self._lead_corrections(
            base, "create_date", corrections, ["source_id"], [("COUNT", None)]
        )
        for key, count in periods.corrections_by_period(corrections, live, 12).items():
            created[key] += count
        return created

    def _won_by_month(self, rules, base, year, month_index, corrections):
        """{month: [deals won, their days to close, how many have them]}"""
        won = defaultdict(lambda: [0, 0.0, 0])
        won_domain = [("active", "=", True), ("stage_id.is_won", "=", True)]
        for month, *values in self._reader_sums(
            rules,
            base,
            "closed",
            [*year, *won_domain],
            ["date"],
            ["quantity", "close_days", "close_days_count"],
        ):
            won[month_index[month]] = values
        live = self._lead_corrections(
            [*base, *won_domain],
            "date_closed",
            corrections,
            [],
            [("COUNT", None), ("SUM", "day_close"), ("COUNT", "day_close")],
        )
        for position in range(3):
            rows = [(index, values[position]) for index, *values in live]
            for (month,), value in periods.corrections_by_period(corrections, rows, 12).items():
                won[month][position] += value
        return won

    def _lost_by_reason(self, rules, base, period):
        """{lost reason: deals lost in the period}"""
        (first, last), corrections = periods.align_bounds(list(period), periods.nearest_utc_month)
        lost = defaultdict(float)
        lost_domain = [("active", "=", False), ("probability", "=", 0)]
        for reason_id, count in self._reader_sums(
            rules,
            base,
            "closed",
            [("is_lost", "=", True), ("date", ">=", first.date()), ("date", "<", last.date())],
            ["lost_reason_id"],
            ["quantity"],
        ):
            lost[reason_id] += count
        live = self._lead_corrections(
            [*base, *lost_domain], "date_closed", corrections, ["lost_reason_id"], [("COUNT", None)]
        )
        for (_period, reason_id), count in periods.corrections_by_period(
            corrections, live, 1
        ).items():
            lost[reason_id] += count
        return lost

    def _activities_by_user(self, rules, base, start, end, days):
        """_activities_from_leads() from the kept figures: activities planned by deadline day,
        done by UTC day and, for the hours between, from the messages."""
        planned = dict(
            self._reader_sums(
                rules,
                base,
                "planned",
                [("date", ">=", days[0]), ("date", "<", days[1])],
                ["activity_user_id"],
                ["quantity"],
            )
        )
        (first, last), corrections = periods.align_bounds([start, end], periods.nearest_utc_day)
        done = defaultdict(float)
        for author_id, count in self._reader_sums(
            rules,
            base,
            "done",
            [("date", ">=", first.date()), ("date", "<", last.date())],
            ["author_id"],
            ["quantity"],
        ):
            done[author_id] += count
        for (_period, author_id), count in periods.corrections_by_period(
            corrections, self._done_activity_corrections(base, corrections), 1
        ).items():
            done[author_id] += count
        self.env.cr.execute(
            SQL(
                "SELECT id, partner_id FROM res_users WHERE id IN %s OR partner_id IN %s",
                tuple(planned) or (None,),
                tuple(done) or (None,),
            )
        )
        rows = [
            (user_id, planned.get(user_id, 0), round(done.get(partner_id, 0)))
            for user_id, partner_id in self.env.cr.fetchall()
        ]
        rows = [row for row in rows if row[1] or row[2]]
        return sorted(rows, key=lambda row: (-row[1], -row[2], row[0]))[:20]

    def _done_activity_corrections(self, base, corrections):
        """[(correction, author, count)] of the activities done in the corrections' hours on the
        leads the reader may see."""
        if not corrections:
            return []
        leads = self.env["crm.lead"].with_context(active_test=False)._search(base)
        self.env.cr.execute(
            SQL(
                """SELECT %(correction)s, author_id, COUNT(*) FROM mail_message
                    WHERE model = 'crm.lead' AND mail_activity_type_id IS NOT NULL
                      AND (%(hours)s) AND res_id IN %(leads)s
                 GROUP BY 1, 2""",
                correction=self._correction_case_sql(SQL("date"), corrections),
                hours=SQL(" OR ").join(
                    SQL("(date >= %s AND date < %s)", start, end)
                    for _index, start, end, _sign in corrections
                ),
                leads=leads.subselect(),
            )
        )
        return self.env.cr.fetchall()

    def _forecast_open_rows(self, rules, base, start_day, end_day, next_end_day):
        """The dashboard's _forecast_open_rows() from the kept figures (by month of
        expected closing), with the calibration's likelihoods of the companies read."""
        figures = self._reader_sums(
            rules,
            base,
            "forecast",
            [
                ("date", ">=", start_day),
                ("date", "<", next_end_day),
                ("stage_id.is_won", "=", False),
            ],
            ["date", "forecast_category", "company_id", "score_bucket"],
            ["quantity", "revenue", "revenue_probability", "revenue_score"],
        )
        likelihood = self._calibrated_likelihoods(
            {company_id for _d, _c, company_id, *_r in figures}
        )
        rows = {}
        for (
            deadline_month,
            category,
            company_id,
            bucket,
            deals,
            amount,
            by_probability,
            by_score,
        ) in figures:
            period_index = int(deadline_month >= end_day)
            row = rows.setdefault(
                (period_index, category),
                {
                    "period_index": period_index,
                    "category": category,
                    "deals": 0,
                    "amount": 0.0,
                    "by_probability": 0.0,
                    "by_likelihood": 0.0,
                },
            )
            rate = likelihood.get((company_id, bucket))
            row["deals"] += deals
            row["amount"] += amount
            row["by_probability"] += float(by_probability) / 100
            row["by_likelihood"] += (
                amount * rate / 100 if rate is not None else float(by_score) / 100
            )
        return list(rows.values())

    def _calibrated_likelihoods(self, company_ids):
        """{(company id, score bucket): calibrated likelihood in percent}"""
        calibrations = (
            self.env["crm.lead.score.calibration"]
            .sudo()
            .search_fetch(
                [("company_id", "in", [company_id or False for company_id in company_ids])],
                ["company_id", "bucket", "likelihood"],
            )
        )
        return {
            (calibration.company_id.id or None, calibration.bucket): calibration.likelihood
            for calibration in calibrations
        }

    # ------------------------------------------------------------------ stage flow
    def _corrected_sums(self, figures, live, corrections, value_count):
        """{group: [values]} of kept figures [(*group, *values)] plus the corrections'
        rows [(correction, *group, *values)] read for the hours between."""
        totals = defaultdict(lambda: [0.0] * value_count)
        for row in figures:
            for position, value in enumerate(row[-value_count:]):
                totals[row[:-value_count]][position] += value or 0
        for position in range(value_count):
            rows = [
                (row[0], *row[1:-value_count], row[len(row) - value_count + position])
                for row in live
            ]
            for (_period, *group), value in periods.corrections_by_period(
                corrections, rows, 1
            ).items():
                totals[tuple(group)][position] += value
        return totals

    def _stage_funnel(self, rules, base, start, end):
        """The dashboard's _stage_funnel() from the kept figures: visits by UTC month of
        entry, open deals by UTC month of their stage's entry, the hours between read from
        the visits and the deals."""
        (first, last), corrections = periods.align_bounds([start, end], periods.nearest_utc_month)
        months = [("date", ">=", first.date()), ("date", "<", last.date())]
        Visit = self.env["crm.lead.stage.visit"]
        visits = self._corrected_sums(
            self._reader_sums(
                rules,
                base,
                "visit_entered",
                months,
                ["stage_id", "outcome"],
                ["quantity", "skipped_count"],
            ),
            self._lead_corrections(
                base,
                "date_entered",
                corrections,
                ["stage_id", "outcome"],
                [
                    ("COUNT", None),
                    SQL(
                        "COUNT(*) FILTER (WHERE %s)",
                        SQL.identifier(Visit._table, "is_without_exit_criteria"),
                    ),
                ],
                model=Visit._name,
            ),
            corrections,
            2,
        )
        current = self._corrected_sums(
            self._reader_sums(rules, base, "current", months, ["stage_id"], ["quantity"]),
            self._lead_corrections(
                [*base, ("type", "=", "opportunity"), ("active", "=", True)],
                "date_last_stage_update",
                corrections,
                ["stage_id"],
                [("COUNT", None)],
            ),
            corrections,
            1,
        )
        funnel, skipped = defaultdict(dict), defaultdict(int)
        for (stage_id, outcome), (count, skipped_count) in visits.items():
            if round(count):
                funnel[stage_id][outcome] = round(count)
            if round(skipped_count):
                skipped[stage_id] += round(skipped_count)
        for (stage_id,), (count,) in current.items():
            if round(count):
                funnel[stage_id]["current"] = round(count)
        return dict(funnel), dict(skipped)

    def _stage_velocity(self, rules, base, start, end):
        """The dashboard's _stage_velocity() from the kept figures: the visits ended in the
        period by stage, team, salesperson and whole days (the median's histogram)."""
        (first, last), corrections = periods.align_bounds([start, end], periods.nearest_utc_month)
        Visit = self.env["crm.lead.stage.visit"]
        by_days = self._corrected_sums(
            self._reader_sums(
                rules,
                base,
                "visit_left",
                [("date", ">=", first.date()), ("date", "<", last.date())],
                ["stage_id", "team_id", "user_id", "whole_days"],
                ["quantity", "visit_days"],
            ),
            self._lead_corrections(
                base,
                "date_left",
                corrections,
                [
                    "stage_id",
                    "team_id",
                    "user_id",
                    stage_flow.whole_days_sql(SQL.identifier(Visit._table, "days")),
                ],
                [("COUNT", None), ("SUM", "days")],
                model=Visit._name,
            ),
            corrections,
            2,
        )
        groups = defaultdict(lambda: {"visits": 0, "days": 0.0, "histogram": defaultdict(int)})
        for (stage_id, team_id, user_id, days), (count, days_total) in by_days.items():
            for level, key in (
                (3, (stage_id, None, None)),
                (1, (stage_id, team_id, None)),
                (2, (stage_id, None, user_id)),
            ):
                group = groups[(level, *key)]
                group["visits"] += round(count)
                group["days"] += days_total
                group["histogram"][days] += round(count)
        return [
            {
                "stage_id": stage_id,
                "team_id": team_id,
                "user_id": user_id,
                "level": level,
                "visits": group["visits"],
                "average": group["days"] / group["visits"],
                "median": stage_flow.histogram_median(group["histogram"]),
            }
            for (level, stage_id, team_id, user_id), group in groups.items()
            if group["visits"]
        ]
