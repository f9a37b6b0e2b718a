import itertools
from collections import defaultdict
from datetime import datetime, time, timedelta

import pytz
from dateutil.relativedelta import relativedelta

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, UserError
from odoo.osv import expression
from odoo.tools import SQL

from .crm_lead import DASHBOARD_SCOPE

PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}
# What one period's KPIs need, of the leads created in it and of those closed in it.
CREATED_FIGURES = ("created", "opportunities")
CLOSED_FIGURES = (
    "won",
    "won_amount",
    "won_amount_count",
    "cycle_sum",
    "cycle_count",
    "lost",
    "done",
)
# Healthy ranges from the pipeline playbook: (low, high) in the KPI's unit.
HEALTHY_BANDS = {
    "conversion_rate": (15, 30),
    "win_rate": (20, 40),
    "cycle_days": (30, 90),
    "coverage": (3, 5),
}


class CrmPipelineDashboard(models.AbstractModel):
    """Numbers of the pipeline dashboard, computed set-based under the reader's access
    rights: every figure comes from `_read_group` (or one SQL aggregate over a query the
    ORM built with the reader's record rules), and every figure has the domain of the
    records behind it, for the drill-down."""

    _name = "crm.pipeline.dashboard"
    _description = "Pipeline Dashboard"

    # ------------------------------------------------------------------ scope
    @api.model
    def _dashboard_scope(self, team_id=None, user_id=None):
        """(scope name, domain on crm.lead, teams) for the reader: a salesperson sees
        their own deals, a team leader their teams, a sales manager the company."""
        user = self.env.user
        if not user.has_group("sales_team.group_sale_salesman"):
            raise AccessError(self.env._("The pipeline dashboard is for sales users."))
        Team = self.env["crm.team"]
        if user.has_group("sales_team.group_sale_manager"):
            scope, teams = "company", Team.search([])  # pylint: disable=no-search-all
            domain = []
        else:
            led = Team.search([("user_id", "=", user.id)])
            if led:
                scope, teams, domain = "team", led, [("team_id", "in", led.ids)]
            else:
                teams = Team.search([("member_ids", "in", user.ids)])
                scope, domain = "own", [("user_id", "=", user.id)]
        if team_id:
            if team_id not in teams.ids:
                raise UserError(self.env._("This sales team is not in your dashboard."))
            teams = Team.browse(team_id)
            domain = [*domain, ("team_id", "=", team_id)]
        if user_id and scope != "own":
            domain = [*domain, ("user_id", "=", user_id)]
        return scope, domain, teams

    @api.model
    def _dashboard_period(self, period, today=None):
        """([start, end) of the current period, [start, end) of the previous one) as UTC
        datetimes, periods starting at midnight in the reader's time zone."""
        if period not in PERIOD_MONTHS:
            raise UserError(self.env._("Unknown period “%(period)s”.", period=period))
        today = today or fields.Date.context_today(self)
        months = PERIOD_MONTHS[period]
        first_month = (today.month - 1) // months * months + 1
        start = today.replace(month=first_month, day=1)
        end = start + relativedelta(months=months)
        previous = start - relativedelta(months=months)
        utc = self._utc_midnight
        return (utc(start), utc(end)), (utc(previous), utc(start)), (start, end)

    def _utc_midnight(self, day):
        """The start of `day` in the reader's time zone, as a UTC datetime."""
        tz = pytz.timezone(self.env.context.get("tz") or "UTC")
        local = tz.localize(datetime.combine(day, time.min))
        return local.astimezone(pytz.UTC).replace(tzinfo=None)

    def _with_reader_tz(self):
        """Periods start and charts group at midnight in the reader's time zone."""
        return self.with_context(tz=self.env.user.tz or "UTC")

    # ------------------------------------------------------------------ domains
    @staticmethod
    def _between(field, start, end):
        return [
            (field, ">=", fields.Datetime.to_string(start)),
            (field, "<", fields.Datetime.to_string(end)),
        ]

    def _won_domain(self, base, start, end):
        return [
            *base,
            ("active", "=", True),
            ("stage_id.is_won", "=", True),
            *self._between("date_closed", start, end),
        ]

    def _lost_domain(self, base, start, end):
        return [
            *base,
            ("active", "=", False),
            ("probability", "=", 0),
            *self._between("date_closed", start, end),
        ]

    @staticmethod
    def _open_domain(base):
        return [
            *base,
            ("type", "=", "opportunity"),
            ("active", "=", True),
            ("stage_id.is_won", "=", False),
        ]

    # ------------------------------------------------------------------ figures
    def _open_pipeline(self, base):
        """[(stage, count, expected revenue)] of the open opportunities: one query, shared
        by the KPIs of both periods (the pipeline is today's) and the stage chart."""
        rules = self._figure_rules()
        if rules is None:
            return self.env["crm.lead"]._read_group(
                self._open_domain(base), ["stage_id"], ["__count", "expected_revenue:sum"]
            )
        rows = self._figure_sums(
            rules,
            base,
            "state",
            [("type", "=", "opportunity"), ("active", "=", True), ("stage_id.is_won", "=", False)],
            ["stage_id"],
            ["quantity", "revenue"],
        )
        stages = self._records("crm.stage", [row[0] for row in rows])
        return [(stages[stage_id], count, amount) for stage_id, count, amount in rows if count]

    def _lead_figures(self, base, periods):
        """[{created, opportunities, won, won_amount, won_amount_count, cycle_sum,
        cycle_count, lost, done}] (sums and counts, that add up) for each (start, end) of
        `periods`, from the leads the reader may see (the ORM's
        queries, so under their record rules): those created in the periods, read from
        the creation-date index, and those closed in them, from the closing-date index;
        one statement."""
        Lead = self.env["crm.lead"].with_context(active_test=False)
        first, last = min(start for start, _end in periods), max(end for _start, end in periods)
        created_query = Lead._search([*base, *self._between("create_date", first, last)])
        closed_query = Lead._search([*base, *self._between("date_closed", first, last)])
        lead = SQL.identifier(closed_query.table)
        created_columns, closed_columns = [], []
        for start, end in periods:
            created, closed = self._period_columns(lead, start, end)
            created_columns += created
            closed_columns += closed
        self.env.cr.execute(
            SQL(
                "SELECT * FROM (%s) AS created, (%s) AS closed",
                created_query.select(*created_columns),
                closed_query.select(*closed_columns),
            )
        )
        row = self.env.cr.fetchone()
        created_row, closed_row = row[: len(created_columns)], row[len(created_columns) :]
        created_size, closed_size = len(CREATED_FIGURES), len(CLOSED_FIGURES)
        return [
            {
                name: value or 0
                for name, value in (
                    *zip(CREATED_FIGURES, created_row[index * created_size :], strict=False),
                    *zip(CLOSED_FIGURES, closed_row[index * closed_size :], strict=False),
                )
            }
            for index in range(len(periods))
        ]

    @staticmethod
    def _period_columns(lead, start, end):
        """The aggregates of CREATED_FIGURES and CLOSED_FIGURES for one period, over the
        rows of `lead`."""
        created = SQL("%s.create_date >= %s AND %s.create_date < %s", lead, start, lead, end)
        closed = SQL("%s.date_closed >= %s AND %s.date_closed < %s", lead, start, lead, end)
        won = SQL(
            "%s AND %s.active AND %s.stage_id IN (SELECT id FROM crm_stage WHERE is_won)",
            closed,
            lead,
            lead,
        )
        lost = SQL("%s AND NOT %s.active AND %s.probability = 0", closed, lead, lead)
        # Activities done on a won deal are its messages that closed an activity; the
        # sub-select only runs for the rows its FILTER keeps.
        done = SQL(
            """(SELECT COUNT(*) FROM mail_message message
                 WHERE message.model = 'crm.lead' AND message.res_id = %s.id
                   AND message.mail_activity_type_id IS NOT NULL)""",
            lead,
        )
        return (
            [
                SQL("COUNT(*) FILTER (WHERE %s)", created),
                SQL("COUNT(*) FILTER (WHERE %s AND %s.type = 'opportunity')", created, lead),
            ],
            [
                SQL("COUNT(*) FILTER (WHERE %s)", won),
                SQL("SUM(%s.expected_revenue) FILTER (WHERE %s)", lead, won),
                SQL("COUNT(%s.expected_revenue) FILTER (WHERE %s)", lead, won),
                SQL("SUM(%s.day_close) FILTER (WHERE %s)", lead, won),
                SQL("COUNT(%s.day_close) FILTER (WHERE %s)", lead, won),
                SQL("COUNT(*) FILTER (WHERE %s)", lost),
                SQL("SUM(%s) FILTER (WHERE %s)", done, won),
            ],
        )

    def _kpis(self, base, start, end, figures, target, pipeline):
        created = [*base, *self._between("create_date", start, end)]
        won = self._won_domain(base, start, end)
        lost = self._lost_domain(base, start, end)
        won_count = figures["won"]
        open_count = sum(count for _stage, count, _amount in pipeline)
        open_amount = sum(amount or 0 for _stage, _count, amount in pipeline)

        def ratio(part, whole, factor=1):
            return round(part * factor / whole, 2) if whole else None

        def average(total, count, digits):
            """Over the won deals that have the value; 0 when none has it."""
            if not won_count:
                return None
            return round(total / count, digits) if count else 0

        opportunities = [*created, ("type", "=", "opportunity")]
        return {
            "conversion_rate": {
                "value": ratio(figures["opportunities"], figures["created"], 100),
                "domain": opportunities,
            },
            "win_rate": {
                "value": ratio(won_count, won_count + figures["lost"], 100),
                "domain": won,
            },
            "deal_size": {
                "value": average(figures["won_amount"], figures["won_amount_count"], 2),
                "domain": won,
            },
            "cycle_days": {
                "value": average(figures["cycle_sum"], figures["cycle_count"], 1),
                "domain": won,
            },
            "coverage": {
                "value": ratio(open_amount or 0, target),
                "domain": self._open_domain(base),
            },
            "activity_to_close": {"value": ratio(figures["done"] or 0, won_count), "domain": won},
            "won_count": {"value": won_count, "domain": won},
            "won_amount": {"value": figures["won_amount"] or 0, "domain": won},
            "lost_count": {"value": figures["lost"], "domain": lost},
            "open_count": {"value": open_count, "domain": self._open_domain(base)},
            "open_amount": {"value": open_amount or 0, "domain": self._open_domain(base)},
            "created_count": {"value": figures["created"], "domain": created},
        }

    def _target(self, teams, scope, start_day, end_day):
        """The teams' revenue targets prorated to the period (a salesperson gets their
        share of their teams' targets)."""
        targets = self.env["crm.team.revenue.target"].search_read(
            [
                ("team_id", "in", teams.ids),
                ("date_from", "<", end_day),
                ("date_to", ">=", start_day),
            ],
            ["team_id", "date_from", "date_to", "amount"],
        )
        total = 0.0
        last_day = end_day - relativedelta(days=1)
        for target in targets:
            days = (target["date_to"] - target["date_from"]).days + 1
            overlap_from = max(target["date_from"], start_day)
            overlap_to = min(target["date_to"], last_day)
            total += target["amount"] * ((overlap_to - overlap_from).days + 1) / days
        if scope == "own" and teams:
            members = sum(len(team.member_ids) or 1 for team in teams)
            total = total * len(teams) / members
        return total

    def _charts(self, base, start, end, days, pipeline):
        year_ago = self._utc_midnight(days[1] - relativedelta(months=12))
        if self._figure_rules() is None:
            sources, lost_reasons, time_to_win = self._live_chart_rows(base, start, end, year_ago)
        else:
            sources, lost_reasons, time_to_win = self._figure_chart_rows(
                base, (start, end), days[1]
            )
        return {
            "pipeline_by_stage": [
                {
                    "label": stage.name or self.env._("No stage"),
                    "count": count,
                    "amount": amount or 0,
                    "domain": [*self._open_domain(base), ("stage_id", "=", stage.id)],
                }
                for stage, count, amount in sorted(
                    pipeline, key=lambda row: (row[0].sequence, row[0].id)
                )
            ],
            "leads_by_source": [
                {
                    "month": fields.Date.to_string(month),
                    "label": source.name or self.env._("No source"),
                    "count": count,
                }
                for month, source, count in sources
            ],
            "lost_by_reason": [
                {
                    "label": reason.name or self.env._("No reason"),
                    "count": count,
                    "domain": [
                        *self._lost_domain(base, start, end),
                        ("lost_reason_id", "=", reason.id),
                    ],
                }
                for reason, count in lost_reasons
            ],
            "time_to_win": [
                {"month": fields.Date.to_string(month), "days": round(days or 0, 1)}
                for month, days in time_to_win
            ],
            "activities_by_salesperson": self._activities_by_salesperson(base, start, end, days),
        }

    # ------------------------------------------------------------------ kept figures
    def _figure_rules(self):
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

    def _figure_query(self, rules, base, domain):
        """Query of the figures of `domain` of the leads of `base` the reader may see."""
        # sudo: the reader's record rules on crm.lead are in `rules`, on the same fields.
        return (
            self.env["crm.pipeline.figure"]
            .with_context(active_test=False)
            .sudo()
            ._search(expression.AND([rules, base, domain]))
        )

    def _figure_sums(self, rules, base, kind, domain, groupby, values):
        """[(*groupby, *sums of values)] of the figures of `kind` of the leads of `base`
        the reader may see; groups whose sums are all zero are left out."""
        query = self._figure_query(rules, base, [("kind", "=", kind), *domain])
        columns = [SQL.identifier(query.table, name) for name in groupby]
        sums = [SQL("SUM(%s)", SQL.identifier(query.table, name)) for name in values]
        query.groupby = SQL(", ").join(columns) if columns else None
        query.having = SQL(" OR ").join(SQL("%s <> 0", total) for total in sums)
        self.env.cr.execute(query.select(*columns, *sums))
        return self.env.cr.fetchall()

    @staticmethod
    def _slivers(bounds, align):
        """The figures are kept by UTC month (or day); a reader's periods start at their
        local midnight. Period k of `bounds` [b0, b1, …] is the kept figures of
        [align(bk), align(bk+1)) plus the leads of [bk, align(bk)) minus those of
        [bk+1, align(bk+1)), an interval backwards counting negatively: returns the
        aligned bounds and [(k, start, end, sign)] of the non-empty slivers, read live."""
        aligned = [align(bound) for bound in bounds]
        slivers = [
            (index, min(bound, edge), max(bound, edge), 1 if bound < edge else -1)
            for index, (bound, edge) in enumerate(zip(bounds, aligned, strict=True))
            if bound != edge
        ]
        return aligned, slivers

    @staticmethod
    def _utc_month(moment):
        """The UTC month start nearest to a local month start (time zones are within 14
        hours of UTC)."""
        return (moment + timedelta(days=15)).replace(day=1, hour=0, minute=0, second=0)

    @staticmethod
    def _utc_day(moment):
        """The UTC midnight nearest to a local midnight."""
        return (moment + timedelta(hours=12)).replace(hour=0, minute=0, second=0)

    @staticmethod
    def _spread(slivers, rows, periods):
        """{(period, *group): value} of the live `rows` [(sliver, *group, value)]: each
        sliver counts for the period it starts (with its sign) and against the one before."""
        signs = {index: sign for index, _start, _end, sign in slivers}
        spread = defaultdict(float)
        for index, *group, value in rows:
            for period, sign in CrmPipelineDashboard._sliver_periods(index, signs[index], periods):
                spread[(period, *group)] += sign * (value or 0)
        return spread

    @staticmethod
    def _sliver_periods(index, sign, periods):
        """[(period, sign)] a sliver counts for: the period it starts, against the one
        before, among the `periods` shown."""
        return [
            (period, factor)
            for period, factor in ((index, sign), (index - 1, -sign))
            if 0 <= period < periods
        ]

    def _period_figures(self, base, bounds):
        """_lead_figures() of the consecutive periods of `bounds`, from the kept figures
        when the reader's rules allow it: one query on them, one on the leads of the
        hours between local and UTC months (none for a reader in UTC)."""
        periods = list(itertools.pairwise(bounds))
        rules = self._figure_rules()
        if rules is None:
            return self._lead_figures(base, periods)
        months, slivers = self._slivers(bounds, self._utc_month)
        figures = self._kept_lead_figures(rules, base, months)
        live = (
            self._lead_figures(base, [(start, end) for _i, start, end, _s in slivers])
            if slivers
            else []
        )
        for (index, _start, _end, sign), sliver in zip(slivers, live, strict=True):
            for period, factor in self._sliver_periods(index, sign, len(periods)):
                for name, value in sliver.items():
                    figures[period][name] += factor * value
        return figures

    def _kept_lead_figures(self, rules, base, months):
        """_lead_figures() of the UTC months [months[k], months[k + 1]), from the kept
        figures: one query."""
        query = self._figure_query(
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
    def _sliver_case(column, slivers):
        """The sliver `column`'s moment falls in."""
        return SQL(
            "CASE %s END",
            SQL(" ").join(
                SQL("WHEN %s >= %s AND %s < %s THEN %s", column, start, column, end, index)
                for index, start, end, _sign in slivers
            ),
        )

    def _live_slivers(self, domain, field, slivers, groupby, aggregates):
        """[(sliver, *groupby, *aggregates)] of the leads of `domain` whose `field` falls
        in the slivers' hours, aggregates being (function, column or None for all rows):
        one query, none without slivers."""
        if not slivers:
            return []
        Lead = self.env["crm.lead"].with_context(active_test=False)
        query = Lead._search(
            expression.AND(
                [
                    domain,
                    expression.OR(
                        [self._between(field, start, end) for _i, start, end, _s in slivers]
                    ),
                ]
            )
        )
        sliver = self._sliver_case(SQL.identifier(query.table, field), slivers)
        groups = [sliver, *(SQL.identifier(query.table, name) for name in groupby)]
        query.groupby = SQL(", ").join(groups)
        self.env.cr.execute(
            query.select(
                *groups,
                *(
                    SQL(
                        "%s(%s)",
                        SQL(function),
                        SQL.identifier(query.table, name) if name else SQL("*"),
                    )
                    for function, name in aggregates
                ),
            )
        )
        return self.env.cr.fetchall()

    def _figure_chart_rows(self, base, period, end_day):
        """_live_chart_rows() from the kept figures: the last year's twelve local months
        from the UTC months nearest them and the hours between, read from the leads."""
        rules = self._figure_rules()
        days = [end_day - relativedelta(months=12 - month) for month in range(13)]
        months, slivers = self._slivers(list(map(self._utc_midnight, days)), self._utc_month)
        year = [("date", ">=", months[0].date()), ("date", "<", months[-1].date())]
        month_index = {month.date(): index for index, month in enumerate(months[:-1])}
        sources = self._kept_sources(rules, base, year, month_index, slivers)
        time_to_win = self._kept_time_to_win(rules, base, year, month_index, slivers)
        lost_reasons = self._kept_lost_reasons(rules, base, period)
        source_of = self._records("utm.source", [source for _month, source in sources])
        reason_of = self._records("crm.lost.reason", list(lost_reasons))
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

    def _records(self, model, ids):
        """{id: record} of `ids`, read together; None gives the empty record."""
        records = self.env[model].browse({record_id for record_id in ids if record_id})
        return {None: self.env[model], **{record.id: record for record in records}}

    def _kept_sources(self, rules, base, year, month_index, slivers):
        """{(month, source): leads created}"""
        created = defaultdict(float)
        for month, source_id, count in self._figure_sums(
            rules, base, "created", year, ["date", "source_id"], ["quantity"]
        ):
            created[(month_index[month], source_id)] += count
        live = self._live_slivers(base, "create_date", slivers, ["source_id"], [("COUNT", None)])
        for key, count in self._spread(slivers, live, 12).items():
            created[key] += count
        return created

    def _kept_time_to_win(self, rules, base, year, month_index, slivers):
        """{month: [deals won, their days to close, how many have them]}"""
        won = defaultdict(lambda: [0, 0.0, 0])
        won_domain = [("active", "=", True), ("stage_id.is_won", "=", True)]
        for month, *values in self._figure_sums(
            rules,
            base,
            "closed",
            [*year, *won_domain],
            ["date"],
            ["quantity", "close_days", "close_days_count"],
        ):
            won[month_index[month]] = values
        live = self._live_slivers(
            [*base, *won_domain],
            "date_closed",
            slivers,
            [],
            [("COUNT", None), ("SUM", "day_close"), ("COUNT", "day_close")],
        )
        for position in range(3):
            rows = [(index, values[position]) for index, *values in live]
            for (month,), value in self._spread(slivers, rows, 12).items():
                won[month][position] += value
        return won

    def _kept_lost_reasons(self, rules, base, period):
        """{lost reason: deals lost in the period}"""
        (first, last), slivers = self._slivers(list(period), self._utc_month)
        lost = defaultdict(float)
        lost_domain = [("active", "=", False), ("probability", "=", 0)]
        for reason_id, count in self._figure_sums(
            rules,
            base,
            "closed",
            [("is_lost", "=", True), ("date", ">=", first.date()), ("date", "<", last.date())],
            ["lost_reason_id"],
            ["quantity"],
        ):
            lost[reason_id] += count
        live = self._live_slivers(
            [*base, *lost_domain], "date_closed", slivers, ["lost_reason_id"], [("COUNT", None)]
        )
        for (_period, reason_id), count in self._spread(slivers, live, 1).items():
            lost[reason_id] += count
        return lost

    def _live_chart_rows(self, base, start, end, year_ago):
        """Leads by source and month and won deals' time to win by month over the last
        year, lost deals of the period by reason, read from the leads."""
        Lead = self.env["crm.lead"].with_context(active_test=False)
        sources = Lead._read_group(
            [*base, *self._between("create_date", year_ago, end)],
            ["create_date:month", "source_id"],
            ["__count"],
        )
        lost_reasons = Lead._read_group(
            self._lost_domain(base, start, end), ["lost_reason_id"], ["__count"]
        )
        time_to_win = Lead._read_group(
            self._won_domain(base, year_ago, end), ["date_closed:month"], ["day_close:avg"]
        )
        return sources, lost_reasons, time_to_win

    def _activities_by_salesperson(self, base, start, end, days):
        """Per salesperson, the activities planned for the period (due in it, not done
        yet) and those done in it, on the leads the reader may see."""
        rules = self._figure_rules()
        if rules is None:
            rows = self._live_activities(base, start, end, days)
        else:
            rows = self._kept_activities(rules, base, start, end, days)
        users = self.env["res.users"].browse([row[0] for row in rows]).sudo()
        # sudo: only the names of users who own activities on deals the reader may see.
        names = dict(zip(users.ids, users.mapped("name"), strict=True))
        return [
            {"user_id": user_id, "label": names[user_id], "planned": planned, "done": done}
            for user_id, planned, done in rows
        ]

    def _kept_activities(self, rules, base, start, end, days):
        """_live_activities() from the kept figures: activities planned by deadline day,
        done by UTC day and, for the hours between, from the messages."""
        planned = dict(
            self._figure_sums(
                rules,
                base,
                "planned",
                [("date", ">=", days[0]), ("date", "<", days[1])],
                ["activity_user_id"],
                ["quantity"],
            )
        )
        (first, last), slivers = self._slivers([start, end], self._utc_day)
        done = defaultdict(float)
        for author_id, count in self._figure_sums(
            rules,
            base,
            "done",
            [("date", ">=", first.date()), ("date", "<", last.date())],
            ["author_id"],
            ["quantity"],
        ):
            done[author_id] += count
        for (_period, author_id), count in self._spread(
            slivers, self._done_slivers(base, slivers), 1
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

    def _done_slivers(self, base, slivers):
        """[(sliver, author, count)] of the activities done in the slivers' hours on the
        leads the reader may see."""
        if not slivers:
            return []
        leads = self.env["crm.lead"].with_context(active_test=False)._search(base)
        self.env.cr.execute(
            SQL(
                """SELECT %(sliver)s, author_id, COUNT(*) FROM mail_message
                    WHERE model = 'crm.lead' AND mail_activity_type_id IS NOT NULL
                      AND (%(hours)s) AND res_id IN %(leads)s
                 GROUP BY 1, 2""",
                sliver=self._sliver_case(SQL("date"), slivers),
                hours=SQL(" OR ").join(
                    SQL("(date >= %s AND date < %s)", start, end)
                    for _index, start, end, _sign in slivers
                ),
                leads=leads.subselect(),
            )
        )
        return self.env.cr.fetchall()

    def _live_activities(self, base, start, end, days):
        """[(user, planned, done)] of the 20 busiest salespeople, from the activities and
        messages of the leads the reader may see: one query."""
        leads = self.env["crm.lead"].with_context(active_test=False)._search(base)
        self.env.cr.execute(
            SQL(
                """SELECT u.id, COALESCE(p.planned, 0), COALESCE(d.done, 0)
                     FROM res_users u
                     LEFT JOIN (SELECT user_id, COUNT(*) AS planned FROM mail_activity
                                 WHERE res_model = 'crm.lead' AND active
                                   AND date_deadline >= %(first_day)s
                                   AND date_deadline < %(day_after)s
                                   AND res_id IN %(leads)s
                              GROUP BY user_id) p ON p.user_id = u.id
                     LEFT JOIN (SELECT author_id, COUNT(*) AS done FROM mail_message
                                 WHERE model = 'crm.lead' AND mail_activity_type_id IS NOT NULL
                                   AND date >= %(start)s AND date < %(end)s
                                   AND res_id IN %(leads)s
                              GROUP BY author_id) d ON d.author_id = u.partner_id
                    WHERE p.planned IS NOT NULL OR d.done IS NOT NULL
                 ORDER BY 2 DESC, 3 DESC, 1 LIMIT 20""",
                leads=leads.subselect(),
                start=start,
                end=end,
                first_day=days[0],
                day_after=days[1],
            )
        )
        return self.env.cr.fetchall()

    def _compare_periods(self, base, teams, scope, period):
        """The KPIs of the current period and of the one before, for the leads of `base`:
        ((start, end) UTC, (first day, day after) local, target, open pipeline, current
        KPIs, previous KPIs). The open pipeline is today's, read once for both."""
        (start, end), (previous_start, previous_end), (start_day, end_day) = self._dashboard_period(
            period
        )
        previous_day = start_day - relativedelta(months=PERIOD_MONTHS[period])
        self._no_jit()
        target = self._target(teams, scope, start_day, end_day)
        pipeline = self._open_pipeline(base)
        previous_figures, figures = self._period_figures(base, [previous_start, start, end])
        current = self._kpis(base, start, end, figures, target, pipeline)
        previous = self._kpis(
            base,
            previous_start,
            previous_end,
            previous_figures,
            self._target(teams, scope, previous_day, start_day),
            pipeline,
        )
        return (start, end), (start_day, end_day), target, pipeline, current, previous

    @api.model
    def _check_dashboard_filters(self, period, team_id, user_id):
        """Filters come from the browser or the external API: refuse the wrong types with
        a clear message rather than a database error."""
        if not isinstance(period, str) or period not in PERIOD_MONTHS:
            raise UserError(self.env._("Unknown period “%(period)s”.", period=period))
        for value, label in (
            (team_id, self.env._("sales team")),
            (user_id, self.env._("salesperson")),
        ):
            if value not in (None, False) and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                raise UserError(
                    self.env._(
                        "The %(filter)s filter must be a record id, not “%(value)s”.",
                        filter=label,
                        value=value,
                    )
                )

    def _no_jit(self):
        """The dashboard's aggregates read few rows from indexes, but their estimated cost
        crosses PostgreSQL's JIT threshold on large databases, and compiling them took
        longer than running them (1.2 s of a 1.5 s query on 1,000,000 leads). For the rest
        of this read-only transaction only: the dashboard's charts and the report's lists
        that follow the KPIs too."""
        self.env.cr.execute(SQL("SET LOCAL jit = off"))

    # ------------------------------------------------------------------ public
    @api.model
    def get_dashboard_data(self, period="month", team_id=None, user_id=None):
        """Everything the dashboard shows, for the reader's role and filters."""
        self._check_dashboard_filters(period, team_id, user_id)
        self = self._with_reader_tz()
        scope, base, teams = self._dashboard_scope(team_id=team_id, user_id=user_id)
        (start, end), (start_day, end_day), target, pipeline, current, previous = (
            self._compare_periods(base, teams, scope, period)
        )
        for name, kpi in current.items():
            kpi["previous"] = previous[name]["value"]
            kpi["band"] = HEALTHY_BANDS.get(name)
        return {
            "scope": scope,
            "period": {
                "name": period,
                "start": fields.Date.to_string(start_day),
                "end": fields.Date.to_string(end_day - relativedelta(days=1)),
            },
            "currency_id": self.env.company.currency_id.id,
            "teams": [{"id": team.id, "name": team.name} for team in teams],
            "target": target,
            "kpis": current,
            "charts": self._charts(base, start, end, (start_day, end_day), pipeline),
        }

    # ------------------------------------------------------------------ report
    def _team_health(self, team, period):
        self = self._with_reader_tz()
        base = [("team_id", "=", team.id)]
        _dates, (start_day, end_day), _target, _pipeline, current, previous = self._compare_periods(
            base, team, "team", period
        )
        labels = {
            "conversion_rate": (self.env._("Lead → opportunity"), "%"),
            "win_rate": (self.env._("Win rate"), "%"),
            "deal_size": (self.env._("Average deal size"), "money"),
            "cycle_days": (self.env._("Sales cycle (days)"), ""),
            "coverage": (self.env._("Pipeline coverage"), "x"),
            "activity_to_close": (self.env._("Activities per won deal"), ""),
            "won_count": (self.env._("Won"), "count"),
            "lost_count": (self.env._("Lost"), "count"),
        }

        def show(value, unit):
            if value is None:
                return "—"
            if unit == "count":
                return tools.formatLang(self.env, value, digits=0)
            if unit == "money":
                return tools.format_amount(
                    self.env, value, team.currency_id or self.env.company.currency_id
                )
            number = tools.formatLang(self.env, value, digits=2 if unit == "x" else 1)
            return {"%": f"{number} %", "x": f"{number}×"}.get(unit, number)

        Lead = self.env["crm.lead"]
        open_deals = self._open_domain(base)
        return {
            "period": {
                "start": fields.Date.to_string(start_day),
                "end": fields.Date.to_string(end_day - relativedelta(days=1)),
            },
            "kpis": [
                {
                    "label": label,
                    "value": show(current[name]["value"], unit),
                    "previous": show(previous[name]["value"], unit),
                    "band": " – ".join(show(bound, unit) for bound in HEALTHY_BANDS[name])
                    if name in HEALTHY_BANDS
                    else "",
                }
                for name, (label, unit) in labels.items()
            ],
            "overdue": Lead.search(
                [*open_deals, ("sla_state", "=", "overdue")],
                order="date_last_stage_update",
                limit=20,
            ),
            "top": Lead.search(open_deals, order="score desc, expected_revenue desc", limit=10),
        }
