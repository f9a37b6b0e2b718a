"""The stage clock (days in stage against the stage's expected days), stale deals and
the escalation of deals overdue in their stage, with their crons."""

import logging
from collections import defaultdict
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.tools import SQL

from ..rules import stage_clock
from ..rules import stars as star_rules
from ..rules.stage_clock import DEFAULT_STALE_AFTER_DAYS

_logger = logging.getLogger(__name__)

# Opportunities handled per call of the follow-up and escalation crons; the cron runs
# again at once while some are left (ir.cron's progress API), each call in its own
# transaction.
STALE_BATCH_SIZE = 1000
# Messages that count as news on a deal: written by a person, or an activity done.
NEWS_MESSAGE_TYPES = ("comment", "email", "email_outgoing")


class CrmLead(models.Model):
    """Days in stage, SLA state, staleness and escalation."""

    _inherit = "crm.lead"

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

    def init(self):
        res = super().init()
        # The stale selection's range: open opportunities by last update.
        tools.create_index(
            self.env.cr,
            "crm_lead_open_opportunity_write_date_index",
            self._table,
            ["write_date"],
            where="active AND type = 'opportunity'",
        )
        return res

    @api.depends("date_last_stage_update", "stage_id", "type", "active")
    def _compute_stage_sla(self):
        now = fields.Datetime.now()
        for lead in self:
            if not lead.date_last_stage_update or lead.type != "opportunity":
                lead.days_in_stage, lead.sla_state = 0, False
                continue
            lead.days_in_stage = stage_clock.whole_days(lead.date_last_stage_update, now)
            if not lead.active or lead.stage_id.is_won:
                lead.sla_state = False
            else:
                lead.sla_state = stage_clock.sla_state(
                    lead.days_in_stage, lead.stage_id.expected_days_max
                )

    def _search_days_in_stage(self, operator, value):
        if operator not in ("=", "!=", "<", "<=", ">", ">=") or not isinstance(value, int):
            return NotImplemented
        domain = stage_clock.entered_days_ago_domain(
            "date_last_stage_update", operator, value, fields.Datetime.now()
        )
        return [("type", "=", "opportunity"), *domain]

    def _search_sla_state(self, operator, value):
        if operator not in ("=", "!=", "in", "not in"):
            return NotImplemented
        states = [value] if operator in ("=", "!=") else list(value)
        positive = operator in ("=", "in")
        if False in states or None in states:  # "no SLA" is what no state covers
            positive = not positive
            states = [s for s in stage_clock.SLA_STATES if s not in states]
        query = self._sla_state_query(fields.Datetime.now(), [s for s in states if s])
        return [("id", "in" if positive else "not in", query)]

    @api.model
    def _sla_state_query(self, now, states):
        """SELECT of the ids of open opportunities whose stage SLA state is in `states`."""
        if not states:
            return SQL("(SELECT NULL::int WHERE FALSE)")
        state = stage_clock.sla_state_sql(
            stage_clock.whole_days_sql(SQL("l.date_last_stage_update"), now),
            SQL("s.expected_days_max"),
        )
        return SQL(
            """(SELECT l.id FROM crm_lead l JOIN crm_stage s ON s.id = l.stage_id
                 WHERE %s AND %s IN %s)""",
            self._sla_applies_sql(),
            state,
            tuple(states),
        )

    @api.model
    def _sla_applies_sql(self):
        """SQL: the lead `l` in stage `s` has an SLA state: an open opportunity in a stage
        with maximum days, not won."""
        return SQL(
            "l.active AND l.type = 'opportunity' AND s.is_won IS NOT TRUE "
            "AND s.expected_days_max > 0"
        )

    def _compute_is_stale(self):
        # A deal updated within the last day is never stale (the shortest delay is a day):
        # no query for the deal just saved in a form.
        day_ago = fields.Datetime.now() - timedelta(days=1)
        ids = tuple(
            lead.id
            for lead in self
            if lead.id and (not lead.write_date or lead.write_date <= day_ago)
        )
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

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        leads = super().create(vals_list)
        # A lead enters its stage when it is created, as crm's status bar counts: a
        # creation dated back (data files loaded at install, which may set create_date)
        # dates its stage clock back too.
        for lead, vals in zip(leads, vals_list, strict=True):
            if (
                vals.get("create_date")
                and not vals.get("date_last_stage_update")
                and lead.create_date == fields.Datetime.to_datetime(vals["create_date"])
            ):
                lead.date_last_stage_update = lead.create_date
        return leads

    def write(self, vals):
        if "stage_id" in vals and len(self) > 1:
            # crm restarts the stage clock of every lead written as soon as one of them
            # changes stage: write the leads already in that stage apart, so they keep it.
            unchanged = self.filtered(lambda lead: lead.stage_id.id == vals["stage_id"])
            if unchanged and unchanged != self:
                return unchanged.write(vals) and (self - unchanged).write(vals)
        return super().write(vals)

    @api.model
    def _align_dates_with_creation(self):
        """For demo data, whose creations are dated back but whose stage clock and last
        update start at install: leads that never changed stage start their stage clock
        at their creation, and leads nobody changed since (no tracked change) their last
        update, as crm's status bar and a real history would have them. A stage written
        without tracking would look the same: not for real data."""
        stage_field = self.env["ir.model.fields"]._get(self._name, "stage_id")
        self.env.flush_all()
        for column, tracked in (
            ("date_last_stage_update", SQL("AND v.field_id = %s", stage_field.id)),
            ("write_date", SQL()),
        ):
            self.env.cr.execute(
                SQL(
                    """UPDATE crm_lead l SET %(column)s = l.create_date
                        WHERE l.%(column)s > l.create_date
                          AND NOT EXISTS (
                              SELECT FROM mail_message m
                                JOIN mail_tracking_value v ON v.mail_message_id = m.id
                               WHERE m.model = 'crm.lead' AND m.res_id = l.id %(tracked)s)""",
                    column=SQL.identifier(column),
                    tracked=tracked,
                )
            )
        self.invalidate_model(["date_last_stage_update", "write_date"])

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
        since = stage_clock.more_whole_days_bound_sql(
            now,
            SQL(
                "COALESCE(NULLIF(t.stale_after_days, 0), c.pipeline_stale_after_days, %s)",
                DEFAULT_STALE_AFTER_DAYS,
            ),
        )
        # The shortest delay of all, computed once by PostgreSQL (an init plan), bounds
        # write_date so that the index is used before each row's own delay is evaluated.
        shortest = SQL(
            """(SELECT LEAST(
                   (SELECT MIN(stale_after_days) FROM crm_team WHERE stale_after_days > 0),
                   (SELECT MIN(pipeline_stale_after_days) FROM res_company), %s) + 1)""",
            DEFAULT_STALE_AFTER_DAYS,
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
                WHERE %s AND %s AND NOT COALESCE(l.is_escalated, FALSE)""",
            self._sla_applies_sql(),
            stage_clock.overdue_sql(
                SQL("l.date_last_stage_update"), now, SQL("s.expected_days_max")
            ),
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
                          SET date_escalated = %s, is_escalated = TRUE, priority = %s
                        WHERE id IN %s""",
                    now,
                    star_rules.escalated_priority_sql(SQL("priority")),
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
            stars = int(star_rules.priority(int(lead.priority or 0), True))
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
