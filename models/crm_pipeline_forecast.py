from dateutil.relativedelta import relativedelta

from odoo import api, fields, models, tools
from odoo.tools import SQL

from ..rules import forecast
from ..rules.periods import PERIOD_MONTHS
from .crm_lead_forecast import FORECAST_CATEGORIES

# How many deals each forecast hygiene list names.
HYGIENE_LIST = 10
# How many ended periods the forecast accuracy compares.
ACCURACY_PERIODS = 6


class CrmPipelineDashboard(models.AbstractModel):
    """The forecast: what the current and next periods will close, weighted two ways and by
    forecast category, against the revenue target; the forecast's hygiene; the score's
    calibration."""

    _inherit = "crm.pipeline.dashboard"

    @api.model
    @api.readonly
    def get_forecast_data(self, period="month", team_id=None, user_id=None):
        self, scope, base, teams = self._reader_scope(period, team_id, user_id)
        self._no_jit()
        return {
            "scope": scope,
            "currency_id": self.env.company.currency_id.id,
            "periods": self._forecast_periods(base, teams, scope, period),
            "hygiene": self._forecast_hygiene(base),
            "accuracy": self._forecast_accuracy(teams, scope, period),
            "calibration": self._forecast_calibration(),
        }

    # ------------------------------------------------------------------ report
    def _team_health(self, team, period):
        """The report's figures, and the team's forecast for this period and the next, as
        bars the PDF draws."""
        health = super()._team_health(team, period)
        forecast_data = self._team_forecast(team, period)
        health["forecast"] = [
            {
                "label": self.env._("This period")
                if row["index"] == 0
                else self.env._("Next period"),
                "dates": f"{row['start']} – {row['end']}",
                "bars": self._report_bars(
                    [
                        (self.env._("Won so far"), row["won"]["amount"]),
                        (self.env._("Commit"), row["categories"][0]["amount"]),
                        (self.env._("Weighted by score likelihood"), row["weighted_likelihood"]),
                        (self.env._("Weighted by probability"), row["weighted_probability"]),
                        (self.env._("Target"), row["target"]),
                    ],
                    lambda amount: tools.format_amount(
                        self.env, amount, team.currency_id or self.env.company.currency_id
                    ),
                ),
            }
            for row in forecast_data
        ]
        return health

    def _team_forecast(self, team, period):
        self = self._with_reader_tz()
        return self._forecast_periods([("team_id", "=", team.id)], team, "team", period)

    # ------------------------------------------------------------------ forecast
    def _forecast_periods(self, base, teams, scope, period):
        """The forecast of this period and the next for the deals of `base`."""
        dates = self._dashboard_period(period)
        start_day, end_day = dates.days
        next_end_day = end_day + relativedelta(months=PERIOD_MONTHS[period])
        rows = self._forecast_open_rows(base, start_day, end_day, next_end_day)
        won = self._forecast_won(base, *dates.current)
        return [
            self._forecast_period(
                base,
                index,
                bounds,
                [row for row in rows if row["period_index"] == index],
                won if index == 0 else (0, 0),
                self._target(teams, scope, *bounds),
                dates.current if index == 0 else None,
            )
            for index, bounds in enumerate(((start_day, end_day), (end_day, next_end_day)))
        ]

    def _forecast_open_rows(self, base, start_day, end_day, next_end_day):
        """Open opportunities of `base` expected to close in the two periods, per period
        and forecast category: deals, expected revenue, weighted by crm's probability and
        by the score's calibrated likelihood; from the kept figures (the periods are whole
        months, as their months of expected closing), else from the leads."""
        rules = self.env["crm.pipeline.figure"]._reader_rules()
        if rules is None:
            return self._forecast_open_rows_from_leads(base, start_day, end_day, next_end_day)
        return self.env["crm.pipeline.figure"]._forecast_open_rows(
            rules, base, start_day, end_day, next_end_day
        )

    def _forecast_open_rows_from_leads(self, base, start_day, end_day, next_end_day):
        """_forecast_open_rows() from the leads: one query, under the reader's record
        rules."""
        Lead = self.env["crm.lead"]
        domain = [
            *self._open_domain(base),
            ("date_deadline", ">=", start_day),
            ("date_deadline", "<", next_end_day),
        ]
        query = Lead._search(domain)
        lead = SQL.identifier(query.table)
        company = query.make_alias(query.table, "forecast_company")
        calibration = query.make_alias(query.table, "forecast_calibration")
        query.add_join(
            "LEFT JOIN",
            company,
            "res_company",
            SQL(
                "%s = %s", SQL.identifier(company, "id"), SQL.identifier(query.table, "company_id")
            ),
        )
        query.add_join(
            "LEFT JOIN",
            calibration,
            "crm_lead_score_calibration",
            SQL(
                "%s IS NOT DISTINCT FROM %s AND %s = %s",
                SQL.identifier(calibration, "company_id"),
                SQL.identifier(query.table, "company_id"),
                SQL.identifier(calibration, "bucket"),
                forecast.score_bucket_sql(SQL("%s.score", lead)),
            ),
        )
        thresholds = tuple(
            SQL("COALESCE(%s, %s)", SQL.identifier(company, fname), default)
            for fname, default in zip(
                forecast.THRESHOLD_FIELDS, forecast.DEFAULT_THRESHOLDS, strict=True
            )
        )
        revenue = SQL("COALESCE(%s.expected_revenue, 0)", lead)
        select = query.select(
            SQL("(%s.date_deadline >= %s)::int AS period_index", lead, end_day),
            SQL(
                "COALESCE(%s.forecast_category_manual, %s) AS category",
                lead,
                forecast.category_from_score_sql(SQL("COALESCE(%s.score, 0)", lead), thresholds),
            ),
            SQL("count(*) AS deals"),
            SQL("sum(%s) AS amount", revenue),
            SQL("sum(%s * COALESCE(%s.probability, 0) / 100) AS by_probability", revenue, lead),
            SQL(
                "sum(%s * COALESCE(%s, LEAST(COALESCE(%s.score, 0), 100)) / 100) AS by_likelihood",
                revenue,
                SQL.identifier(calibration, "likelihood"),
                lead,
            ),
        )
        return self.env.execute_query_dict(SQL("%s GROUP BY 1, 2", select))

    def _forecast_won(self, base, start, end):
        """(revenue, deals) won between `start` and `end`, as the dashboard's KPIs count
        them (from the kept figures when the reader's rules allow it)."""
        [figures] = self._figures_of_periods(base, [start, end])
        return figures["won_amount"], round(figures["won"])

    def _forecast_period(self, base, index, bounds, rows, won, target, won_bounds):
        start_day, end_day = bounds
        won_amount, won_count = won
        open_domain = [
            *self._open_domain(base),
            ("date_deadline", ">=", fields.Date.to_string(start_day)),
            ("date_deadline", "<", fields.Date.to_string(end_day)),
        ]
        labels = dict(
            self.env["crm.lead"]._fields["forecast_category"]._description_selection(self.env)
        )
        by_category = {row["category"]: row for row in rows}
        categories = [
            {
                "name": category,
                "label": labels[category],
                "count": by_category.get(category, {}).get("deals", 0),
                "amount": by_category.get(category, {}).get("amount", 0) or 0,
                "domain": [*open_domain, ("forecast_category", "=", category)],
            }
            for category, _label in FORECAST_CATEGORIES
        ]
        forecast_rows = [row for row in rows if row["category"] != "omitted"]
        by_probability = sum(row["by_probability"] or 0 for row in forecast_rows)
        by_likelihood = sum(row["by_likelihood"] or 0 for row in forecast_rows)
        commit = by_category.get("commit", {}).get("amount", 0) or 0
        gap = max(target - won_amount, 0) if target else None
        return {
            "index": index,
            "start": fields.Date.to_string(start_day),
            "end": fields.Date.to_string(end_day - relativedelta(days=1)),
            "won": {
                "amount": won_amount,
                "count": won_count,
                "domain": self._won_domain(base, *won_bounds) if won_bounds else [("id", "=", 0)],
            },
            "open": {
                "amount": sum(row["amount"] or 0 for row in rows),
                "count": sum(row["deals"] for row in rows),
                "domain": open_domain,
            },
            "weighted_probability": by_probability,
            "weighted_likelihood": by_likelihood,
            "categories": categories,
            "target": target,
            "gap": gap,
            "commit_coverage": commit / gap if gap else None,
            "weighted_coverage": by_likelihood / gap if gap else None,
            "forecast": won_amount + by_likelihood,
        }

    # ------------------------------------------------------------------ accuracy
    def _forecast_accuracy(self, teams, scope, period):
        """Forecast at the start of each of the last ended periods against the revenue won
        in it, for the reader's teams (team leaders and sales managers: a salesperson
        reads the deals of their own only)."""
        if scope == "own" or period not in ("month", "quarter"):
            return []
        Snapshot = self.env["crm.team.forecast.snapshot"]
        today = fields.Date.context_today(self)
        snapshots = Snapshot.search(
            [("team_id", "in", teams.ids), ("period", "=", period), ("date_end", "<=", today)],
            order="date_start desc",
        )
        by_start = {}
        for snapshot in snapshots:
            by_start.setdefault(snapshot.date_start, []).append(snapshot)
        starts = sorted(by_start, reverse=True)[:ACCURACY_PERIODS]
        if not starts:
            return []
        first, last_end = min(starts), by_start[max(starts)][0].date_end
        won_by_period = self.env["crm.lead"]._read_group(
            [
                *self._won_domain(
                    [("team_id", "in", teams.ids)],
                    self._utc_midnight(first),
                    self._utc_midnight(last_end),
                )
            ],
            [f"date_closed:{period}"],
            ["expected_revenue:sum"],
        )
        won = {fields.Date.to_date(start): amount for start, amount in won_by_period}
        rows = []
        for start in sorted(starts):
            kept = by_start[start]
            actual = won.get(start, 0) or 0
            weighted = sum(snapshot.weighted for snapshot in kept)
            rows.append(
                {
                    "start": fields.Date.to_string(start),
                    "end": fields.Date.to_string(kept[0].date_end - relativedelta(days=1)),
                    "weighted": weighted,
                    "commit": sum(snapshot.commit for snapshot in kept),
                    "target": sum(snapshot.target for snapshot in kept),
                    "actual": actual,
                    "error": 100 * (weighted - actual) / actual if actual else None,
                }
            )
        return rows

    # ------------------------------------------------------------------ hygiene
    def _forecast_hygiene(self, base):
        """Open deals whose expected closing has passed, and those pushed back."""
        Lead = self.env["crm.lead"]
        passed_domain = [*self._open_domain(base), ("is_deadline_passed", "=", True)]
        pushed_domain = [*self._open_domain(base), ("deadline_push_count", ">", 0)]

        def listed(domain, order):
            return [
                {
                    "id": lead.id,
                    "name": lead.name,
                    "user": lead.user_id.name or "",
                    "date_deadline": fields.Date.to_string(lead.date_deadline),
                    "pushes": lead.deadline_push_count,
                    "days_pushed": lead.deadline_pushed_days,
                    "amount": lead.expected_revenue,
                }
                for lead in Lead.search_fetch(
                    domain,
                    [
                        "name",
                        "user_id",
                        "date_deadline",
                        "deadline_push_count",
                        "deadline_pushed_days",
                        "expected_revenue",
                    ],
                    order=order,
                    limit=HYGIENE_LIST,
                )
            ]

        return {
            "passed": {
                "count": self._deadline_passed_count(base, passed_domain),
                "domain": passed_domain,
                "deals": listed(passed_domain, "date_deadline, id"),
            },
            "pushed": {
                "count": Lead.search_count(pushed_domain),
                "domain": pushed_domain,
                "deals": listed(pushed_domain, "deadline_pushed_days desc, id"),
            },
        }

    def _deadline_passed_count(self, base, passed_domain):
        """Open deals of `base` past their expected closing: those of the months before
        this one from the kept figures, this month's from the leads."""
        Lead = self.env["crm.lead"]
        Figure = self.env["crm.pipeline.figure"]
        rules = Figure._reader_rules()
        if rules is None:
            return Lead.search_count(passed_domain)
        month_start = fields.Date.context_today(self).replace(day=1)
        [(earlier,)] = Figure._reader_sums(
            rules,
            base,
            "forecast",
            [("date", "<", month_start), ("stage_id.is_won", "=", False)],
            [],
            ["quantity"],
        ) or [(0,)]
        return earlier + Lead.search_count([*passed_domain, ("date_deadline", ">=", month_start)])

    # ------------------------------------------------------------------ calibration
    def _forecast_calibration(self):
        """The reader's company's calibration: buckets and quality figures."""
        company = self.env.company
        rows = (
            self.env["crm.lead.score.calibration"].sudo().search([("company_id", "=", company.id)])
        )
        return {
            "buckets": [
                {
                    "range": row.score_range,
                    "closed": row.closed_count,
                    "won": row.won_count,
                    "win_rate": row.win_rate,
                    "likelihood": row.likelihood,
                }
                for row in rows
            ],
            "deals": company.score_calibration_deals,
            "month_before": company.score_calibration_month_before,
            "score_brier": company.score_brier or None,
            "score_auc": company.score_auc or None,
            "crm_brier": company.crm_probability_brier or None,
            "crm_auc": company.crm_probability_auc or None,
            "calibrated_on": fields.Datetime.to_string(company.score_calibrated_on) or None,
        }
