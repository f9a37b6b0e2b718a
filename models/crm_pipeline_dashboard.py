import itertools
from collections import namedtuple

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from ..rules import periods
from ..rules.periods import PERIOD_MONTHS

# A period of the dashboard: [start, end) in UTC of it and of the one before, its local days.
DashboardPeriod = namedtuple("DashboardPeriod", "current previous days")
# The KPIs of a period beside those of the one before, for the same leads.
PeriodComparison = namedtuple("PeriodComparison", "bounds days target pipeline current previous")
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
        """The current and previous periods of the reader: their [start, end) as UTC
        datetimes, periods starting at midnight in the reader's time zone, and the local
        days of the current one."""
        if period not in PERIOD_MONTHS:
            raise UserError(self.env._("Unknown period “%(period)s”.", period=period))
        days, previous_days = periods.period_days(period, today or fields.Date.context_today(self))
        utc = self._utc_midnight
        return DashboardPeriod(
            current=tuple(map(utc, days)), previous=tuple(map(utc, previous_days)), days=days
        )

    def _utc_midnight(self, day):
        """The start of `day` in the reader's time zone, as a UTC datetime."""
        return periods.utc_midnight(day, self.env.context.get("tz"))

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
        rules = self.env["crm.pipeline.figure"]._reader_rules()
        if rules is None:
            return self.env["crm.lead"]._read_group(
                self._open_domain(base), ["stage_id"], ["__count", "expected_revenue:sum"]
            )
        rows = self.env["crm.pipeline.figure"]._reader_sums(
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
        if self.env["crm.pipeline.figure"]._reader_rules() is None:
            sources, lost_reasons, time_to_win = self._chart_rows_from_leads(
                base, start, end, year_ago
            )
        else:
            sources, lost_reasons, time_to_win = self.env["crm.pipeline.figure"]._chart_rows(
                base, (start, end), days[1]
            )
        return {
            "pipeline_by_stage": [
                {
                    "label": stage.name or self.env._("No stage"),
                    "count": count,
                    "amount": amount or 0,
                    "domain": [*self._open_domain(base), ("stage_id", "=", stage.id)],
                    "stage_id": stage.id,
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
    def _figures_of_periods(self, base, bounds):
        """_lead_figures() of the consecutive periods of `bounds`, from the kept figures
        when the reader's rules allow it: one query on them, one on the leads of the
        hours between local and UTC months (none for a reader in UTC)."""
        spans = list(itertools.pairwise(bounds))
        Figure = self.env["crm.pipeline.figure"]
        rules = Figure._reader_rules()
        if rules is None:
            return self._lead_figures(base, spans)
        months, corrections = periods.align_bounds(bounds, periods.nearest_utc_month)
        figures = Figure._lead_figures_by_utc_month(rules, base, months)
        from_leads = (
            self._lead_figures(base, [(c.start, c.end) for c in corrections]) if corrections else []
        )
        for correction, values in zip(corrections, from_leads, strict=True):
            for period, factor in periods.corrected_periods(correction, len(spans)):
                for name, value in values.items():
                    figures[period][name] += factor * value
        return figures

    def _records(self, model, ids):
        """{id: record} of `ids`, read together; None gives the empty record."""
        records = self.env[model].browse({record_id for record_id in ids if record_id})
        return {None: self.env[model], **{record.id: record for record in records}}

    def _chart_rows_from_leads(self, base, start, end, year_ago):
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
        rules = self.env["crm.pipeline.figure"]._reader_rules()
        if rules is None:
            rows = self._activities_from_leads(base, start, end, days)
        else:
            rows = self.env["crm.pipeline.figure"]._activities_by_user(
                rules, base, start, end, days
            )
        users = self.env["res.users"].browse([row[0] for row in rows]).sudo()
        # sudo: only the names of users who own activities on deals the reader may see.
        names = dict(zip(users.ids, users.mapped("name"), strict=True))
        return [
            {"user_id": user_id, "label": names[user_id], "planned": planned, "done": done}
            for user_id, planned, done in rows
        ]

    def _activities_from_leads(self, base, start, end, days):
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
        """PeriodComparison of the current period and the one before for the leads of
        `base`. The open pipeline is today's, read once for both."""
        dates = self._dashboard_period(period)
        (start, end), (previous_start, previous_end) = dates.current, dates.previous
        start_day, end_day = dates.days
        previous_day = start_day - relativedelta(months=PERIOD_MONTHS[period])
        self._no_jit()
        target = self._target(teams, scope, start_day, end_day)
        pipeline = self._open_pipeline(base)
        previous_figures, figures = self._figures_of_periods(base, [previous_start, start, end])
        return PeriodComparison(
            bounds=dates.current,
            days=dates.days,
            target=target,
            pipeline=pipeline,
            current=self._kpis(base, start, end, figures, target, pipeline),
            previous=self._kpis(
                base,
                previous_start,
                previous_end,
                previous_figures,
                self._target(teams, scope, previous_day, start_day),
                pipeline,
            ),
        )

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

    def _reader_scope(self, period, team_id, user_id):
        """(this model in the reader's time zone, scope, domain, teams) of a dashboard
        call, once its filters are checked. The caller turns JIT off (_no_jit) before its
        aggregates, once."""
        self._check_dashboard_filters(period, team_id, user_id)
        dashboard = self._with_reader_tz()
        scope, base, teams = dashboard._dashboard_scope(team_id=team_id, user_id=user_id)
        return dashboard, scope, base, teams

    def _no_jit(self):
        """The dashboard's aggregates read few rows from indexes, but their estimated cost
        crosses PostgreSQL's JIT threshold on large databases, and compiling them takes
        longer than running them (README, Benchmarks). For the rest
        of this read-only transaction only: the dashboard's charts and the report's lists
        that follow the KPIs too."""
        self.env.cr.execute(SQL("SET LOCAL jit = off"))

    # ------------------------------------------------------------------ public
    @api.model
    @api.readonly
    def get_dashboard_data(self, period="month", team_id=None, user_id=None):
        """Everything the dashboard shows, for the reader's role and filters."""
        self, scope, base, teams = self._reader_scope(period, team_id, user_id)
        comparison = self._compare_periods(base, teams, scope, period)
        start_day, end_day = comparison.days
        for name, kpi in comparison.current.items():
            kpi["previous"] = comparison.previous[name]["value"]
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
            "target": comparison.target,
            "kpis": comparison.current,
            "charts": self._charts(base, *comparison.bounds, comparison.days, comparison.pipeline),
        }

    # ------------------------------------------------------------------ report
    def _team_health(self, team, period):
        self = self._with_reader_tz()
        base = [("team_id", "=", team.id)]
        comparison = self._compare_periods(base, team, "team", period)
        (start_day, end_day), current, previous = (
            comparison.days,
            comparison.current,
            comparison.previous,
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
            "stage_bars": self._report_bars(
                [
                    (stage.name or self.env._("No stage"), amount or 0)
                    for stage, _count, amount in sorted(
                        comparison.pipeline, key=lambda row: (row[0].sequence, row[0].id)
                    )
                ],
                lambda amount: show(amount, "money"),
            ),
            "target_bars": self._report_bars(
                [
                    (self.env._("Won"), current["won_amount"]["value"] or 0),
                    (self.env._("Target"), comparison.target),
                ]
                if comparison.target
                else [],
                lambda amount: show(amount, "money"),
            ),
        }

    @api.model
    def _report_bars(self, rows, show):
        """Bars of a chart the PDF report draws itself (wkhtmltopdf runs no JavaScript):
        for each (label, value), its shown value and its length in % of the longest. They
        start from the page's start side, the right one in a right-to-left language."""
        peak = max((value for _label, value in rows), default=0) or 1
        return [
            {"label": label, "value": show(value), "percent": round(100 * value / peak, 1)}
            for label, value in rows
        ]
