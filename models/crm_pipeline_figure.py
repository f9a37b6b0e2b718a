from odoo import api, fields, models
from odoo.tools import SQL

from ..rules import forecast, stage_flow
from .crm_lead_forecast import FORECAST_CATEGORIES
from .crm_lead_stage_visit import OUTCOMES

# The figure's keys (what the dashboard groups and filters on) and its additive values, in
# the order of the table's columns and of the rows the figure functions return.
FIGURE_KEYS = (
    ("kind", "VARCHAR"),
    ("company_id", "INTEGER"),
    ("team_id", "INTEGER"),
    ("user_id", "INTEGER"),
    ("date", "DATE"),
    ("source_id", "INTEGER"),
    ("type", "VARCHAR"),
    ("stage_id", "INTEGER"),
    ("active", "BOOLEAN"),
    ("is_lost", "BOOLEAN"),
    ("lost_reason_id", "INTEGER"),
    ("activity_user_id", "INTEGER"),
    ("author_id", "INTEGER"),
    ("score_bucket", "INTEGER"),
    ("forecast_category", "VARCHAR"),
    ("outcome", "VARCHAR"),
    ("whole_days", "INTEGER"),
)
FIGURE_VALUES = (
    ("quantity", "INTEGER"),
    ("revenue", "DOUBLE PRECISION"),
    ("revenue_count", "INTEGER"),
    ("close_days", "DOUBLE PRECISION"),
    ("close_days_count", "INTEGER"),
    ("done_count", "INTEGER"),
    # Exact, so that a lead's delta and its taking back cancel out to nothing.
    ("revenue_probability", "NUMERIC"),
    ("revenue_score", "NUMERIC"),
    ("visit_days", "DOUBLE PRECISION"),
    ("skipped_count", "INTEGER"),
)
# A lead's changes that move its figures: the trigger on crm_lead fires on these only.
LEAD_FIGURE_COLUMNS = (
    "company_id",
    "team_id",
    "user_id",
    "create_date",
    "source_id",
    "type",
    "stage_id",
    "active",
    "probability",
    "date_closed",
    "expected_revenue",
    "day_close",
    "lost_reason_id",
    "date_deadline",
    "forecast_category_manual",
    "date_last_stage_update",
)
# An open opportunity with an expected closing counts in the forecast, by month of that
# date (a date: the same month in every time zone).
IN_FORECAST = "{row}.active AND {row}.type = 'opportunity' AND {row}.date_deadline IS NOT NULL"
# crm's predictive scoring rewrites the probability of open leads every night, the
# module's scoring their score: the lead's row triggers compare only whether the
# probability is 0 (a lost deal), and a change of these alone is counted by a statement
# trigger, for the whole statement at once (FORECAST_ROW).
COMPARED_AS = {"probability": "{row}.probability = 0"}
FORECAST_ONLY_COLUMNS = ("probability", "score")
# What an open opportunity `{lead}` adds to the forecast, counted `{sign}` times, its
# company's thresholds read from `company`.
FORECAST_ROW = """'forecast'::varchar, {lead}.company_id, {lead}.team_id, {lead}.user_id,
    date_trunc('month', {lead}.date_deadline)::date, NULL::int, NULL::varchar,
    {lead}.stage_id, NULL::bool, NULL::bool, NULL::int, NULL::int, NULL::int,
    %(score_bucket)s, COALESCE({lead}.forecast_category_manual, %(category_from_score)s)::varchar,
    NULL::varchar, NULL::int,
    {sign}, {sign} * COALESCE({lead}.expected_revenue, 0)::float8,
    {sign} * ({lead}.expected_revenue IS NOT NULL)::int, 0::float8, 0, 0,
    {sign} * COALESCE({lead}.expected_revenue, 0)::numeric
        * COALESCE({lead}.probability, 0)::numeric,
    {sign} * COALESCE({lead}.expected_revenue, 0)::numeric
        * LEAST(COALESCE({lead}.score, 0), 100),
    0::float8, 0"""
FORECAST_TRIGGER = "crm_pipeline_lead_forecast_delta"
MESSAGE_FIGURE_COLUMNS = ("model", "res_id", "mail_activity_type_id", "author_id", "date")
ACTIVITY_FIGURE_COLUMNS = ("res_model", "res_id", "user_id", "date_deadline", "active")

# What one lead, one done-activity message, one planned activity adds to the figures
# (`sign` -1 takes it back out). A lead's key (company, team, salesperson) is on every row
# it counts in, so that the reader's record rules on crm.lead apply to the figures as
# they are; its activities and messages count under that key, so they are read only when
# the lead comes, goes or changes key (`moved`): otherwise old and new cancel out. Months
# are UTC months of the creation and closing dates; the dashboard reads the hours between
# a reader's local month and the UTC month from the leads themselves.
LEAD_FIGURES_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_pipeline_lead_figures(lead crm_lead, sign INTEGER, moved BOOLEAN)
RETURNS SETOF crm_pipeline_figure_row LANGUAGE sql STABLE AS $$
    SELECT 'created'::varchar, lead.company_id, lead.team_id, lead.user_id,
           date_trunc('month', lead.create_date)::date, lead.source_id, lead.type::varchar,
           NULL::int, NULL::bool, NULL::bool, NULL::int, NULL::int, NULL::int,
           NULL::int, NULL::varchar, NULL::varchar, NULL::int,
           sign, 0::float8, 0, 0::float8, 0, 0, 0::numeric, 0::numeric, 0::float8, 0
     WHERE lead.id IS NOT NULL
    UNION ALL
    SELECT 'closed', lead.company_id, lead.team_id, lead.user_id,
           date_trunc('month', lead.date_closed)::date, NULL, NULL,
           lead.stage_id, lead.active, NOT lead.active AND lead.probability = 0,
           lead.lost_reason_id, NULL, NULL, NULL, NULL, NULL, NULL,
           sign, sign * COALESCE(lead.expected_revenue, 0)::float8,
           sign * (lead.expected_revenue IS NOT NULL)::int,
           sign * COALESCE(lead.day_close, 0)::float8, sign * (lead.day_close IS NOT NULL)::int,
           sign * (SELECT COUNT(*) FROM mail_message message
                    WHERE message.model = 'crm.lead' AND message.res_id = lead.id
                      AND message.mail_activity_type_id IS NOT NULL)::int, 0, 0, 0, 0
     WHERE lead.id IS NOT NULL AND lead.date_closed IS NOT NULL
    UNION ALL
    SELECT 'state', lead.company_id, lead.team_id, lead.user_id, NULL, NULL, lead.type,
           lead.stage_id, lead.active, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           sign, sign * COALESCE(lead.expected_revenue, 0)::float8,
           sign * (lead.expected_revenue IS NOT NULL)::int, 0, 0, 0, 0, 0, 0, 0
     WHERE lead.id IS NOT NULL
    UNION ALL
    SELECT 'current', lead.company_id, lead.team_id, lead.user_id,
           date_trunc('month', lead.date_last_stage_update)::date, NULL, NULL,
           lead.stage_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           sign, 0, 0, 0, 0, 0, 0, 0, 0, 0
     WHERE lead.id IS NOT NULL AND lead.active AND lead.type = 'opportunity'
       AND lead.date_last_stage_update IS NOT NULL
    UNION ALL
    SELECT %(forecast)s
      FROM (SELECT) AS one
 LEFT JOIN res_company company ON company.id = lead.company_id
     WHERE lead.id IS NOT NULL AND %(in_forecast)s
    UNION ALL
    SELECT 'planned', lead.company_id, lead.team_id, lead.user_id, activity.date_deadline,
           NULL, NULL, NULL, NULL, NULL, NULL, activity.user_id, NULL, NULL, NULL, NULL, NULL,
           sign * COUNT(*)::int, 0, 0, 0, 0, 0, 0, 0, 0, 0
      FROM mail_activity activity
     WHERE moved AND activity.res_model = 'crm.lead' AND activity.res_id = lead.id
       AND activity.active
  GROUP BY activity.date_deadline, activity.user_id
    UNION ALL
    SELECT 'done', lead.company_id, lead.team_id, lead.user_id, message.date::date,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, message.author_id, NULL, NULL, NULL, NULL,
           sign * COUNT(*)::int, 0, 0, 0, 0, 0, 0, 0, 0, 0
      FROM mail_message message
     WHERE moved AND message.model = 'crm.lead' AND message.res_id = lead.id
       AND message.mail_activity_type_id IS NOT NULL
  GROUP BY message.date::date, message.author_id
$$
"""
MESSAGE_FIGURES_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_pipeline_message_figures(message mail_message, sign INTEGER)
RETURNS SETOF crm_pipeline_figure_row LANGUAGE sql STABLE AS $$
    SELECT 'done'::varchar, lead.company_id, lead.team_id, lead.user_id, message.date::date,
           NULL::int, NULL::varchar, NULL::int, NULL::bool, NULL::bool, NULL::int, NULL::int,
           message.author_id, NULL::int, NULL::varchar, NULL::varchar, NULL::int,
           sign, 0::float8, 0, 0::float8, 0, 0, 0::numeric, 0::numeric, 0::float8, 0
      FROM crm_lead lead
     WHERE message.model = 'crm.lead' AND message.mail_activity_type_id IS NOT NULL
       AND lead.id = message.res_id
    UNION ALL
    SELECT 'closed', lead.company_id, lead.team_id, lead.user_id,
           date_trunc('month', lead.date_closed)::date, NULL, NULL,
           lead.stage_id, lead.active, NOT lead.active AND lead.probability = 0,
           lead.lost_reason_id, NULL, NULL, NULL, NULL, NULL, NULL,
           0, 0, 0, 0, 0, sign, 0, 0, 0, 0
      FROM crm_lead lead
     WHERE message.model = 'crm.lead' AND message.mail_activity_type_id IS NOT NULL
       AND lead.id = message.res_id AND lead.date_closed IS NOT NULL
$$
"""
ACTIVITY_FIGURES_FUNCTION = """
CREATE OR REPLACE FUNCTION crm_pipeline_activity_figures(activity mail_activity, sign INTEGER)
RETURNS SETOF crm_pipeline_figure_row LANGUAGE sql STABLE AS $$
    SELECT 'planned'::varchar, lead.company_id, lead.team_id, lead.user_id,
           activity.date_deadline, NULL::int, NULL::varchar, NULL::int, NULL::bool,
           NULL::bool, NULL::int, activity.user_id, NULL::int, NULL::int, NULL::varchar,
           NULL::varchar, NULL::int,
           sign, 0::float8, 0, 0::float8, 0, 0, 0::numeric, 0::numeric, 0::float8, 0
      FROM crm_lead lead
     WHERE activity.res_model = 'crm.lead' AND activity.active AND lead.id = activity.res_id
$$
"""
# What the stage visits of `visits` (a table, or a trigger's transition table) add to the
# figures: the funnel counts them by UTC month of entry and outcome, the velocity by UTC
# month of leaving, with their days as a histogram of whole days for the median.
VISIT_FIGURES = """
    SELECT 'visit_entered'::varchar, visit.company_id, visit.team_id, visit.user_id,
           date_trunc('month', visit.date_entered)::date, NULL::int, NULL::varchar,
           visit.stage_id, NULL::bool, NULL::bool, NULL::int, NULL::int, NULL::int,
           NULL::int, NULL::varchar, visit.outcome::varchar, NULL::int,
           %(sign)s, 0::float8, 0, 0::float8, 0, 0, 0::numeric, 0::numeric, 0::float8,
           %(sign)s * COALESCE(visit.is_without_exit_criteria, FALSE)::int
      FROM %(visits)s visit
    UNION ALL
    SELECT 'visit_left', visit.company_id, visit.team_id, visit.user_id,
           date_trunc('month', visit.date_left)::date, NULL, NULL, visit.stage_id,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, %(whole_days)s,
           %(sign)s, 0, 0, 0, 0, 0, 0, 0, %(sign)s * COALESCE(visit.days, 0), 0
      FROM %(visits)s visit
"""
VISIT_TRIGGER = "crm_pipeline_visit_figures_delta"
# (event, transition tables, the visits' signs)
VISIT_TRIGGER_EVENTS = (
    ("INSERT", "NEW TABLE AS new_visits", (("new_visits", 1),)),
    ("DELETE", "OLD TABLE AS old_visits", (("old_visits", -1),)),
    (
        "UPDATE",
        "OLD TABLE AS old_visits NEW TABLE AS new_visits",
        (("old_visits", -1), ("new_visits", 1)),
    ),
)
LEAD_MOVED = """TG_OP <> 'UPDATE'
    OR (OLD.company_id, OLD.team_id, OLD.user_id) IS DISTINCT FROM
       (NEW.company_id, NEW.team_id, NEW.user_id)"""
# (table, figure function, columns whose change moves figures, rows that count at all,
# the function's further argument)
FIGURE_TRIGGERS = (
    ("crm_lead", "crm_pipeline_lead_figures", LEAD_FIGURE_COLUMNS, "", LEAD_MOVED),
    (
        "mail_message",
        "crm_pipeline_message_figures",
        MESSAGE_FIGURE_COLUMNS,
        "{row}.model = 'crm.lead' AND {row}.mail_activity_type_id IS NOT NULL",
        "",
    ),
    (
        "mail_activity",
        "crm_pipeline_activity_figures",
        ACTIVITY_FIGURE_COLUMNS,
        "{row}.res_model = 'crm.lead' AND {row}.active",
        "",
    ),
)


class CrmPipelineFigure(models.Model):
    """The pipeline dashboard's figures kept up to date as deals change, so that a
    manager's dashboard reads a few thousand rows instead of the company's leads.

    Each row is a delta: what a lead, an activity or a done-activity message adds to (or
    takes from) a figure, keyed by the lead's company, team and salesperson. PostgreSQL
    triggers write them, because a lead's figures also change behind the ORM's write()
    (stored computed fields flushed later, crm's probability updates in SQL, foreign keys
    set to null); they only insert, so concurrent users never wait on a shared counter.
    A nightly cron folds the deltas into one row per key. The table has no foreign keys:
    a team or user deleted is taken out by the leads' own update, and a delta must never
    fail the deletion that caused it."""

    _name = "crm.pipeline.figure"
    _description = "Pipeline Figure"
    _auto = False
    _log_access = False

    kind = fields.Selection(
        [
            ("created", "Leads created"),
            ("closed", "Leads closed"),
            ("state", "Leads by stage"),
            ("planned", "Activities planned"),
            ("done", "Activities done"),
            ("forecast", "Open opportunities by expected closing"),
            ("current", "Open opportunities by entry in their stage"),
            ("visit_entered", "Stage visits by entry"),
            ("visit_left", "Stage visits by end"),
        ],
        readonly=True,
    )
    company_id = fields.Many2one("res.company", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    date = fields.Date(
        readonly=True,
        help="First day of the UTC month of creation or closing, day of the activity's "
        "deadline, UTC day of the done activity, first day of the month of the expected "
        "closing.",
    )
    source_id = fields.Many2one("utm.source", readonly=True)
    type = fields.Selection([("lead", "Lead"), ("opportunity", "Opportunity")], readonly=True)
    stage_id = fields.Many2one("crm.stage", readonly=True)
    active = fields.Boolean(readonly=True)
    is_lost = fields.Boolean(string="Lost", readonly=True)
    lost_reason_id = fields.Many2one("crm.lost.reason", readonly=True)
    activity_user_id = fields.Many2one("res.users", string="Assigned To", readonly=True)
    author_id = fields.Many2one("res.partner", readonly=True)
    quantity = fields.Integer(readonly=True)
    revenue = fields.Float(readonly=True)
    revenue_count = fields.Integer(string="Deals with Revenue", readonly=True)
    close_days = fields.Float(string="Days to Close", readonly=True)
    close_days_count = fields.Integer(string="Deals with Days to Close", readonly=True)
    done_count = fields.Integer(string="Activities Done", readonly=True)
    score_bucket = fields.Integer(readonly=True)
    forecast_category = fields.Selection(FORECAST_CATEGORIES, readonly=True)
    revenue_probability = fields.Float(
        string="Revenue × Probability",
        readonly=True,
        help="Expected revenue times crm's probability (in percent).",
    )
    outcome = fields.Selection(OUTCOMES, readonly=True)
    whole_days = fields.Integer(string="Whole Days in Stage", readonly=True)
    visit_days = fields.Float(string="Days in Stage", readonly=True)
    skipped_count = fields.Integer(string="Moved On Without Criteria", readonly=True)
    revenue_score = fields.Float(
        string="Revenue × Score", readonly=True, help="Expected revenue times the score."
    )

    def init(self):
        counted = self._figures_counted()
        self._init_figure_table()
        # The triggers are created before the figures are counted: CREATE TRIGGER waits
        # for the transactions writing leads and holds back new ones until this one
        # commits, so no change falls between the count and the triggers.
        self._init_figure_triggers()
        if not counted:
            self._rebuild_figures()

    def _figures_counted(self):
        """Whether the figures are kept, with every column of this version: else (an
        install, an upgrade that brings new figures) they are counted from the leads."""
        cr = self.env.cr
        cr.execute(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'crm_pipeline_lead_figures_delta_insert'"
        )
        return bool(cr.rowcount) and self._row_type_columns() == len(FIGURE_KEYS) + len(
            FIGURE_VALUES
        )

    def _row_type_columns(self):
        self.env.cr.execute(
            """SELECT count(*) FROM pg_attribute attribute
                 JOIN pg_type row_type ON row_type.typrelid = attribute.attrelid
                WHERE row_type.typname = 'crm_pipeline_figure_row'
                  AND attribute.attnum > 0 AND NOT attribute.attisdropped"""
        )
        return self.env.cr.fetchone()[0]

    def _init_figure_table(self):
        cr = self.env.cr
        cr.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS crm_pipeline_figure (id BIGSERIAL PRIMARY KEY, %s)",
                self._column_definitions(),
            )
        )
        # A dashboard reads one kind of figures over a few months or days.
        cr.execute(
            """CREATE INDEX IF NOT EXISTS crm_pipeline_figure_kind_date_index
                   ON crm_pipeline_figure (kind, date)"""
        )
        for name, definition in (*FIGURE_KEYS, *FIGURE_VALUES):
            cr.execute(
                SQL(
                    "ALTER TABLE crm_pipeline_figure ADD COLUMN IF NOT EXISTS %s %s",
                    SQL.identifier(name),
                    SQL(definition),
                )
            )
        if self._row_type_columns() != len(FIGURE_KEYS) + len(FIGURE_VALUES):
            # CASCADE: the figure functions returning it, made again next.
            cr.execute(
                SQL(
                    """DROP TYPE IF EXISTS crm_pipeline_figure_row CASCADE;
                       CREATE TYPE crm_pipeline_figure_row AS (%s)""",
                    self._column_definitions(),
                )
            )

    def _init_figure_triggers(self):
        """The figure functions and the triggers, made again at each update."""
        self.env.cr.execute("DROP FUNCTION IF EXISTS crm_pipeline_lead_figures(crm_lead, INTEGER)")
        self.env.cr.execute(self._lead_figures_function())
        for function in (MESSAGE_FIGURES_FUNCTION, ACTIVITY_FIGURES_FUNCTION):
            self.env.cr.execute(SQL(function))  # constant DDL: no parameter
        self._drop_figure_triggers()
        for table, function, columns, counts, argument in FIGURE_TRIGGERS:
            self._create_figure_trigger(table, function, columns, counts, argument)
        self._create_visit_figure_triggers()
        self._create_forecast_trigger()

    @staticmethod
    def _visit_figures(visits, sign):
        """The figure rows of the stage visits of the table `visits`, counted `sign` times."""
        return SQL(
            "SELECT * FROM (%s) AS figure (%s)",
            SQL(
                VISIT_FIGURES,
                visits=SQL.identifier(visits),
                sign=sign,
                whole_days=stage_flow.whole_days_sql(SQL("visit.days")),
            ),
            SQL(", ").join(SQL.identifier(name) for name, _type in (*FIGURE_KEYS, *FIGURE_VALUES)),
        )

    def _create_visit_figure_triggers(self):
        """Statement triggers on the stage visits: a change of stage ends the visits of a
        whole write in one INSERT, and a rebuild of the history replaces them all; the
        deltas of a statement are counted from its transition tables, in one INSERT."""
        branches = SQL(" ").join(
            SQL(
                "IF TG_OP = %s THEN %s; END IF;",
                event,
                self._delta_statement(
                    SQL(" UNION ALL ").join(
                        self._visit_figures(visits, sign) for visits, sign in signs
                    )
                ),
            )
            for event, _transition, signs in VISIT_TRIGGER_EVENTS
        )
        self.env.cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %(name)s() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN %(branches)s RETURN NULL; END $$""",
                name=SQL.identifier(VISIT_TRIGGER),
                branches=branches,
            )
        )
        for event, transition, _signs in VISIT_TRIGGER_EVENTS:
            self.env.cr.execute(
                SQL(
                    """CREATE TRIGGER %s AFTER %s ON crm_lead_stage_visit REFERENCING %s
                       FOR EACH STATEMENT EXECUTE FUNCTION %s()""",
                    SQL.identifier(f"{VISIT_TRIGGER}_{event.lower()}"),
                    SQL(event),
                    SQL(transition),
                    SQL.identifier(VISIT_TRIGGER),
                )
            )

    @classmethod
    def _lead_figures_function(cls):
        """LEAD_FIGURES_FUNCTION with its forecast row."""
        return SQL(
            LEAD_FIGURES_FUNCTION,
            forecast=cls._forecast_row("lead", "sign"),
            in_forecast=SQL(IN_FORECAST.format(row="lead")),
        )

    @staticmethod
    def _forecast_row(lead, sign):
        """FORECAST_ROW of the lead aliased `lead`, with the forecast's rules of
        rules/forecast.py: the score's bucket, and the category the score gives under the
        lead's company's thresholds."""
        thresholds = tuple(
            SQL("COALESCE(%s, %s)", SQL.identifier("company", fname), default)
            for fname, default in zip(
                forecast.THRESHOLD_FIELDS, forecast.DEFAULT_THRESHOLDS, strict=True
            )
        )
        return SQL(
            FORECAST_ROW.format(lead=lead, sign=sign),
            score_bucket=forecast.score_bucket_sql(SQL("%s.score", SQL(lead))),
            category_from_score=forecast.category_from_score_sql(
                SQL("COALESCE(%s.score, 0)", SQL(lead)), thresholds
            ),
        )

    def _create_forecast_trigger(self):
        """A statement trigger on crm_lead for the updates that change only its forecast
        figures (FORECAST_ONLY_COLUMNS): the row triggers leave them, and a nightly rewrite
        of every open lead's probability is counted in one INSERT per statement.
        PostgreSQL gives no column list to triggers with transition tables: it runs after
        every update, and finds no row for the others."""
        _table, _function, columns, counts, _argument = FIGURE_TRIGGERS[0]
        forecast_only = SQL(
            "(%s) IS DISTINCT FROM (%s)",
            *(
                SQL(", ").join(
                    SQL("%s.%s", SQL(row), SQL.identifier(c)) for c in FORECAST_ONLY_COLUMNS
                )
                for row in ("old_lead", "new_lead")
            ),
        )
        sides = SQL(" UNION ALL ").join(
            SQL(
                """SELECT %(row)s FROM old_leads old_lead
                     JOIN new_leads new_lead ON new_lead.id = old_lead.id
                   LEFT JOIN res_company company ON company.id = %(lead)s.company_id
                   WHERE %(in_forecast)s AND %(forecast_only)s AND NOT (%(changed)s)""",
                row=self._forecast_row(lead, sign),
                lead=SQL(lead),
                in_forecast=SQL(IN_FORECAST.format(row=lead)),
                forecast_only=forecast_only,
                changed=self._changed_sql(columns, counts, "old_lead", "new_lead"),
            )
            for lead, sign in (("old_lead", "-1"), ("new_lead", "1"))
        )
        self.env.cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %(name)s() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN %(body)s; RETURN NULL; END $$;
                   CREATE TRIGGER %(name)s AFTER UPDATE ON crm_lead
                   REFERENCING OLD TABLE AS old_leads NEW TABLE AS new_leads
                   FOR EACH STATEMENT EXECUTE FUNCTION %(name)s()""",
                name=SQL.identifier(FORECAST_TRIGGER),
                body=self._delta_statement(
                    SQL(
                        "SELECT * FROM (%s) AS figure (%s)",
                        sides,
                        SQL(", ").join(
                            SQL.identifier(name) for name, _type in (*FIGURE_KEYS, *FIGURE_VALUES)
                        ),
                    )
                ),
            )
        )

    @staticmethod
    def _changed_sql(columns, counts, old, new):
        """Whether the rows `old` and `new` differ in their figures' `columns` (as
        COMPARED_AS compares them), among the rows that count at all."""
        old_row, new_row = (
            SQL(", ").join(
                SQL(COMPARED_AS[column].format(row=row))
                if column in COMPARED_AS
                else SQL("%s.%s", SQL(row), SQL.identifier(column))
                for column in columns
            )
            for row in (old, new)
        )
        changed = SQL("(%s) IS DISTINCT FROM (%s)", old_row, new_row)
        if counts:
            changed = SQL(
                "%s AND ((%s) OR (%s))",
                changed,
                SQL(counts.format(row=old)),
                SQL(counts.format(row=new)),
            )
        return changed

    @staticmethod
    def _column_definitions():
        return SQL(", ").join(
            SQL("%s %s", SQL.identifier(name), SQL(definition))
            for name, definition in (*FIGURE_KEYS, *FIGURE_VALUES)
        )

    @staticmethod
    def _summed(rows):
        """SELECT of the figure rows `rows` summed per key, without the keys whose values
        cancel out."""
        keys = SQL(", ").join(SQL.identifier(name) for name, _type in FIGURE_KEYS)
        values = [SQL.identifier(name) for name, _type in FIGURE_VALUES]
        return SQL(
            """SELECT %(keys)s, %(sums)s FROM (%(rows)s) AS delta
             GROUP BY %(keys)s HAVING %(nonzero)s""",
            keys=keys,
            sums=SQL(", ").join(SQL("SUM(%s)", value) for value in values),
            rows=rows,
            nonzero=SQL(" OR ").join(SQL("SUM(%s) <> 0", value) for value in values),
        )

    @classmethod
    def _delta_statement(cls, rows):
        """INSERT of the deltas `rows` (a SELECT of figure rows), summed per key."""
        return SQL(
            "INSERT INTO crm_pipeline_figure (%s, %s) %s",
            SQL(", ").join(SQL.identifier(name) for name, _type in FIGURE_KEYS),
            SQL(", ").join(SQL.identifier(name) for name, _type in FIGURE_VALUES),
            cls._summed(rows),
        )

    @api.model
    def _totals(self):
        """Every figure: [(*keys, *values)] summed per key, sorted (to compare figures kept
        with figures counted again)."""
        self.env.flush_all()
        self.env.cr.execute(self._summed(SQL("SELECT * FROM crm_pipeline_figure")))
        return sorted(self.env.cr.fetchall(), key=repr)

    def _create_figure_trigger(self, table, function, columns, counts, argument):
        """Row triggers on `table` that insert the deltas of `function` for the old and
        the new row, on insert, delete, and updates of `columns` that change them.

        Each row's look-ups (its lead, its messages and activities) go through indexes
        whatever PostgreSQL's statistics say: a table loaded in bulk in one transaction
        (an import, a migration) has statistics of when it was small, and sequential
        scans planned from them make each row cost what the table holds."""
        name = f"{function}_delta"
        argument = SQL(", %s", SQL(argument)) if argument else SQL()
        body = self._delta_statement(
            SQL(
                """SELECT * FROM %(function)s(OLD, -1%(argument)s)
                   UNION ALL SELECT * FROM %(function)s(NEW, 1%(argument)s)""",
                function=SQL.identifier(function),
                argument=argument,
            )
        )
        changed = self._changed_sql(columns, counts, "OLD", "NEW")
        self.env.cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %(name)s() RETURNS trigger LANGUAGE plpgsql
                   SET enable_seqscan = off AS $$
                   BEGIN %(body)s; RETURN NULL; END $$;
                   CREATE TRIGGER %(insert)s AFTER INSERT ON %(table)s
                      FOR EACH ROW %(when_new)s EXECUTE FUNCTION %(name)s();
                   CREATE TRIGGER %(delete)s AFTER DELETE ON %(table)s
                      FOR EACH ROW %(when_old)s EXECUTE FUNCTION %(name)s();
                   CREATE TRIGGER %(update)s AFTER UPDATE OF %(columns)s ON %(table)s
                      FOR EACH ROW WHEN (%(changed)s) EXECUTE FUNCTION %(name)s()""",
                name=SQL.identifier(name),
                body=body,
                table=SQL.identifier(table),
                insert=SQL.identifier(f"{name}_insert"),
                delete=SQL.identifier(f"{name}_delete"),
                update=SQL.identifier(f"{name}_update"),
                when_new=SQL("WHEN (%s)", SQL(counts.format(row="NEW"))) if counts else SQL(),
                when_old=SQL("WHEN (%s)", SQL(counts.format(row="OLD"))) if counts else SQL(),
                columns=SQL(", ").join(map(SQL.identifier, columns)),
                changed=changed,
            )
        )

    @api.model
    def _drop_figure_triggers(self):
        self.env.cr.execute(
            SQL("DROP TRIGGER IF EXISTS %s ON crm_lead", SQL.identifier(FORECAST_TRIGGER))
        )
        self.env.cr.execute(
            SQL(" ").join(
                SQL(
                    "DROP TRIGGER IF EXISTS %s ON crm_lead_stage_visit;",
                    SQL.identifier(f"{VISIT_TRIGGER}_{event.lower()}"),
                )
                for event, _transition, _signs in VISIT_TRIGGER_EVENTS
            )
        )
        for table, function, *_definition in FIGURE_TRIGGERS:
            self.env.cr.execute(
                SQL(" ").join(
                    SQL(
                        "DROP TRIGGER IF EXISTS %s ON %s;",
                        SQL.identifier(name),
                        SQL.identifier(table),
                    )
                    for name in (
                        f"{function}_delta_{event}" for event in ("insert", "delete", "update")
                    )
                )
            )

    @api.model
    def _uninstall_figures(self):
        """The triggers, their functions, the figures' table and row type."""
        self._drop_figure_triggers()
        for _table, function, *_definition in FIGURE_TRIGGERS:
            self.env.cr.execute(
                SQL(
                    "DROP FUNCTION IF EXISTS %s(); DROP FUNCTION IF EXISTS %s",
                    SQL.identifier(f"{function}_delta"),
                    SQL.identifier(function),
                )
            )
        for function in (VISIT_TRIGGER, FORECAST_TRIGGER):
            self.env.cr.execute(SQL("DROP FUNCTION IF EXISTS %s()", SQL.identifier(function)))
        self.env.cr.execute(
            "DROP TABLE IF EXISTS crm_pipeline_figure; DROP TYPE IF EXISTS crm_pipeline_figure_row"
        )

    @api.model
    def _rebuild_figures(self):
        """Count the figures again from the leads, their activities and messages, and
        the stage visits."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "DELETE FROM crm_pipeline_figure; %s",
                self._delta_statement(
                    SQL(
                        """SELECT figure.* FROM crm_lead lead,
                                  crm_pipeline_lead_figures(lead, 1, TRUE) AS figure
                           UNION ALL %s""",
                        self._visit_figures("crm_lead_stage_visit", 1),
                    )
                ),
            )
        )

    @api.model
    def _recount_forecast(self, companies):
        """Count the forecast figures of the leads of `companies` again, once their score
        thresholds changed. The leads are locked against writes meanwhile (a settings
        change, rare), so that no lead's delta falls between the deletion and the count."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """LOCK TABLE crm_lead IN SHARE MODE;
                   DELETE FROM crm_pipeline_figure
                    WHERE kind = 'forecast' AND company_id IN %(companies)s; %(count)s""",
                companies=tuple(companies.ids),
                count=self._delta_statement(
                    SQL(
                        """SELECT figure.* FROM crm_lead lead,
                                  crm_pipeline_lead_figures(lead, 1, FALSE) AS figure
                            WHERE lead.company_id IN %s AND figure.kind = 'forecast'""",
                        tuple(companies.ids),
                    )
                ),
            )
        )

    @api.model
    def _cron_fold_figures(self):
        """One row per key instead of one per change: the deltas written since the last
        fold are summed in a single statement, so readers see them before or after, and
        deltas written meanwhile stay for the next fold."""
        self.env.cr.execute(
            SQL(
                "WITH moved AS (DELETE FROM crm_pipeline_figure RETURNING *) %s",
                self._delta_statement(SQL("SELECT * FROM moved")),
            )
        )
