from dateutil.relativedelta import relativedelta

from odoo import api, fields, models

from ..rules import periods

# The periods whose forecast is kept.
SNAPSHOT_PERIODS = ("month", "quarter")


class CrmTeamForecastSnapshot(models.Model):
    """A team's forecast as it stood at the start of a period, to hold against what the
    team won by its end."""

    _name = "crm.team.forecast.snapshot"
    _description = "Sales Team Forecast Snapshot"
    _order = "date_start desc, team_id"

    team_id = fields.Many2one("crm.team", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="team_id.company_id", store=True, index=True)
    period = fields.Selection([("month", "Month"), ("quarter", "Quarter")], required=True)
    date_start = fields.Date(required=True)
    date_end = fields.Date(required=True, help="The day after the period.")
    currency_id = fields.Many2one(related="company_id.currency_id")
    weighted = fields.Monetary(
        string="Weighted Forecast", help="Open deals weighted by the score's likelihood."
    )
    weighted_probability = fields.Monetary(string="Weighted by Probability")
    commit = fields.Monetary()
    target = fields.Monetary()

    _sql_constraints = [
        (
            "team_period_unique",
            "UNIQUE(team_id, period, date_start)",
            "One forecast snapshot a team and a period.",
        ),
    ]

    @api.model
    def _cron_take_snapshots(self):
        """The forecast of each team for the month and the quarter that began, once."""
        Dashboard = self.env["crm.pipeline.dashboard"].with_context(tz="UTC")
        today = fields.Date.context_today(Dashboard)
        teams = self.env["crm.team"].search([("use_opportunities", "=", True)])
        existing = {
            (snapshot.team_id.id, snapshot.period, snapshot.date_start)
            for snapshot in self.search([("date_start", "<=", today), ("date_end", ">", today)])
        }
        values = []
        for period in SNAPSHOT_PERIODS:
            (start_day, end_day), _previous = periods.period_days(period, today)
            next_end_day = end_day + relativedelta(months=periods.PERIOD_MONTHS[period])
            for team in teams:
                if (team.id, period, start_day) in existing:
                    continue
                base = [("team_id", "=", team.id)]
                rows = Dashboard._forecast_open_rows(base, start_day, end_day, next_end_day)
                current = [row for row in rows if row["period_index"] == 0]
                counted = [row for row in current if row["category"] != "omitted"]
                values.append(
                    {
                        "team_id": team.id,
                        "period": period,
                        "date_start": start_day,
                        "date_end": end_day,
                        "weighted": sum(row["by_likelihood"] or 0 for row in counted),
                        "weighted_probability": sum(row["by_probability"] or 0 for row in counted),
                        "commit": sum(
                            row["amount"] or 0 for row in current if row["category"] == "commit"
                        ),
                        "target": Dashboard._target(team, "team", start_day, end_day),
                    }
                )
        return self.create(values)
