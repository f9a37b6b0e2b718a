from collections import defaultdict

from markupsafe import Markup

from odoo import api, fields, models, tools
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL

from .crm_lead import QUALIFICATION_FIELDS

# How many refused deals a blocked move names before it counts the rest.
GATE_ERROR_DEALS = 5


class CrmLead(models.Model):
    """Exit criteria: the checklist of the deal's stage, and the gate when it moves on."""

    _inherit = "crm.lead"

    exit_check_count = fields.Integer(string="Exit Checks", compute="_compute_exit_check_counts")
    exit_check_met_count = fields.Integer(
        string="Exit Checks Met", compute="_compute_exit_check_counts"
    )
    is_exit_ready = fields.Boolean(
        string="Ready for the Next Stage",
        compute="_compute_exit_check_counts",
        search="_search_is_exit_ready",
        help="The opportunity meets every exit check of its stage.",
    )
    exit_checklist = fields.Json(
        string="Exit Criteria Checklist", compute="_compute_exit_checklist"
    )
    exit_criteria_skipped = fields.Boolean(
        string="Moved On Without Criteria",
        copy=False,
        help="The opportunity's last move forward left a stage whose exit checks were not "
        "all met; its chatter names them.",
    )

    # ------------------------------------------------------------
    # The checks of a stage
    # ------------------------------------------------------------

    @api.model
    @tools.ormcache()
    def _exit_checks_by_stage(self):
        """{stage id: ({id, company_id, domain}, …)} of the active exit checks."""
        # sudo: whether a deal meets its stage's checks must not depend on who asks.
        checks = self.env["crm.stage.exit.check"].sudo().search([])  # pylint: disable=no-search-all
        by_stage = defaultdict(list)
        for check in checks:
            by_stage[check.stage_id.id].append(
                {"id": check.id, "company_id": check.company_id.id, "domain": check._get_domain()}
            )
        return {stage_id: tuple(stage_checks) for stage_id, stage_checks in by_stage.items()}

    @api.model
    @tools.ormcache()
    def _exit_stage_order(self):
        """{stage id: (position, team id, is won, gate)} in the pipeline's order."""
        stages = self.env["crm.stage"].sudo().search([])  # pylint: disable=no-search-all
        return {
            stage.id: (position, stage.team_id.id, stage.is_won, stage.exit_gate)
            for position, stage in enumerate(stages)
        }

    def _exit_checks_of(self, stage_id):
        """The checks of `stage_id` that apply to this lead's company."""
        company_id = self.company_id.id
        return [
            check
            for check in self._exit_checks_by_stage().get(stage_id, ())
            if not check["company_id"] or check["company_id"] == company_id
        ]

    def _exit_checks_met(self, checks_by_lead):
        """{lead: set of check ids met} for {lead: [check, …]}: saved leads in one query,
        new ones (a form being edited) in memory."""
        met = defaultdict(set)
        leads_by_check, checks = defaultdict(list), {}
        for lead, lead_checks in checks_by_lead.items():
            for check in lead_checks:
                checks[check["id"]] = check
                if lead.id:
                    leads_by_check[check["id"]].append(lead.id)
                elif lead.filtered_domain(check["domain"]):
                    met[lead].add(check["id"])
        if not leads_by_check:
            return met
        Lead = self.sudo().with_context(active_test=False)
        selects = [
            SQL(
                "SELECT %s AS check_id, met.id AS lead_id FROM (%s) met",
                check_id,
                Lead._search(
                    expression.AND([[("id", "in", lead_ids)], checks[check_id]["domain"]])
                ).select(),
            )
            for check_id, lead_ids in leads_by_check.items()
        ]
        leads = {lead.id: lead for lead in checks_by_lead if lead.id}
        for check_id, lead_id in self.env.execute_query(SQL(" UNION ALL ").join(selects)):
            met[leads[lead_id]].add(check_id)
        return met

    # ------------------------------------------------------------
    # The checklist
    # ------------------------------------------------------------

    @api.depends("stage_id", "company_id", *QUALIFICATION_FIELDS)
    def _compute_exit_check_counts(self):
        checks_by_lead = {lead: lead._exit_checks_of(lead.stage_id.id) for lead in self}
        met = self._exit_checks_met(checks_by_lead)
        for lead, checks in checks_by_lead.items():
            lead.exit_check_count = len(checks)
            lead.exit_check_met_count = len(met[lead])
            lead.is_exit_ready = len(met[lead]) == len(checks)

    @api.depends("stage_id", "company_id", *QUALIFICATION_FIELDS)
    @api.depends_context("lang")
    def _compute_exit_checklist(self):
        checks_by_lead = {lead: lead._exit_checks_of(lead.stage_id.id) for lead in self}
        met = self._exit_checks_met(checks_by_lead)
        check_ids = {check["id"] for checks in checks_by_lead.values() for check in checks}
        # sudo: salespeople read the checks; the names come in the reader's language.
        names = dict(
            self.env["crm.stage.exit.check"]
            .sudo()
            .browse(check_ids)
            .mapped(lambda check: (check.id, check.name))
        )
        for lead, checks in checks_by_lead.items():
            lead.exit_checklist = [
                {"id": check["id"], "name": names[check["id"]], "met": check["id"] in met[lead]}
                for check in checks
            ] or False

    def _search_is_exit_ready(self, operator, value):
        """Deals in a stage without checks, or meeting every check of theirs; else, among
        open (active) deals, those missing one. Positive sub-queries only (a NOT IN over
        messages is quadratic in PostgreSQL): the missing are the stage's deals EXCEPT the
        ready ones."""
        if operator not in ("=", "!="):
            return NotImplemented
        checked = self._exit_checks_by_stage()
        if not checked:
            return [] if (operator == "=") == bool(value) else expression.FALSE_DOMAIN
        ready_by_stage = {
            stage_id: self._exit_ready_domain(stage_id, checks)
            for stage_id, checks in checked.items()
        }
        if (operator == "=") == bool(value):
            return expression.OR(
                [[("stage_id", "not in", list(checked))], *ready_by_stage.values()]
            )
        Lead = self.sudo().with_context(active_test=False)
        missing = SQL(" UNION ALL ").join(
            SQL(
                "((%s) EXCEPT (%s))",
                Lead._search([("stage_id", "=", stage_id), ("active", "=", True)]).subselect(),
                Lead._search(ready).subselect(),
            )
            for stage_id, ready in ready_by_stage.items()
        )
        return [("id", "in", SQL("(%s)", missing))]

    def _exit_ready_domain(self, stage_id, checks):
        """The deals of `stage_id` meeting each of its `checks` that applies to them."""
        # sudo: as the checklist, whoever searches.
        Lead = self.sudo().with_context(active_test=False)
        conditions = []
        for check in checks:
            meets = [("id", "in", Lead._search(check["domain"]))]
            if check["company_id"]:
                meets = expression.OR([[("company_id", "!=", check["company_id"])], meets])
            conditions.append(meets)
        return expression.AND([[("stage_id", "=", stage_id)], *conditions])

    # ------------------------------------------------------------
    # The gate
    # ------------------------------------------------------------

    def write(self, vals):
        passages = self._exit_gate_passages(vals["stage_id"]) if vals.get("stage_id") else {}
        if not passages:
            return super().write(vals)
        refused, overridden = self._exit_gate_decide(passages)
        if refused:
            raise UserError(self._exit_gate_error(refused, passages, vals["stage_id"]))
        missing = self.browse([lead.id for lead, passage in passages.items() if passage["missing"]])
        cleared = self.browse(
            [
                lead.id
                for lead, passage in passages.items()
                if not passage["missing"] and lead.exit_criteria_skipped
            ]
        )
        res = super(CrmLead, self - missing - cleared).write(vals)
        if missing:
            super(CrmLead, missing).write({**vals, "exit_criteria_skipped": True})
            self.env["crm.lead.stage.visit"]._mark_without_exit_criteria(missing)
        if cleared:
            super(CrmLead, cleared).write({**vals, "exit_criteria_skipped": False})
        self._exit_gate_log(passages, overridden, vals["stage_id"])
        return res

    def _exit_gate_passages(self, stage_id):
        """{lead: {stages, skipped, missing}} of the leads that move forward to `stage_id`:
        the stages each leaves or jumps over, those it jumps over, and the checks of those
        stages it does not meet as (stage id, check id)."""
        order = self._exit_stage_order()
        target = order.get(stage_id)
        if not target or target[2]:
            return {}
        passed_by_lead = {}
        for lead in self:
            current = order.get(lead.stage_id.id)
            if not lead.active or not current or current[0] >= target[0]:
                continue
            passed_by_lead[lead] = [
                passed_id
                for passed_id, (position, team_id, is_won, _gate) in order.items()
                if current[0] <= position < target[0]
                and not is_won
                and team_id in (False, lead.team_id.id)
            ]
        checks_by_lead = {
            lead: [check for passed_id in passed_ids for check in lead._exit_checks_of(passed_id)]
            for lead, passed_ids in passed_by_lead.items()
        }
        met = self._exit_checks_met(checks_by_lead)
        return {
            lead: {
                "stages": passed_ids,
                "skipped": passed_ids[1:],
                "missing": [
                    (passed_id, check["id"])
                    for passed_id in passed_ids
                    for check in lead._exit_checks_of(passed_id)
                    if check["id"] not in met[lead]
                ],
            }
            for lead, passed_ids in passed_by_lead.items()
        }

    def _exit_gate_decide(self, passages):
        """(refused, overridden): the leads whose move the gate refuses to this user, and
        those a sales manager moves past the gate anyway."""
        order = self._exit_stage_order()
        blocked = [
            lead
            for lead, passage in passages.items()
            if any(order[stage_id][3] == "block" for stage_id, _check in passage["missing"])
            or (passage["skipped"] and lead.team_id.is_stage_skip_restricted)
        ]
        if not blocked:
            return [], []
        if self.env.su or self.env.user.has_group("sales_team.group_sale_manager"):
            return [], blocked
        return blocked, []

    def _exit_gate_error(self, refused, passages, stage_id):
        stage = self.env["crm.stage"].browse(stage_id)
        reasons = [
            self.env._(
                "“%(deal)s”: %(reasons)s",
                deal=lead.display_name,
                reasons=self._exit_gate_reasons(lead, passages[lead]),
            )
            for lead in refused[:GATE_ERROR_DEALS]
        ]
        if len(refused) > GATE_ERROR_DEALS:
            reasons.append(
                self.env._("and %(count)s more deals.", count=len(refused) - GATE_ERROR_DEALS)
            )
        return self.env._(
            "These deals cannot move on to %(stage)s yet:\n%(reasons)s\n"
            "Meet the missing checks first, or ask a sales manager to move them.",
            stage=stage.name,
            reasons="\n".join(reasons),
        )

    def _exit_gate_reasons(self, lead, passage):
        """What the gate found on `lead`'s way forward, in the user's words."""
        reasons = []
        if passage["missing"]:
            names = (
                self.env["crm.stage.exit.check"]
                .sudo()
                .browse([check_id for _stage, check_id in passage["missing"]])
                .mapped("name")
            )
            reasons.append(self.env._("missing %(checks)s", checks=", ".join(names)))
        if passage["skipped"] and lead.team_id.is_stage_skip_restricted:
            skipped = self.env["crm.stage"].browse(passage["skipped"]).mapped("name")
            reasons.append(self.env._("it would skip %(stages)s", stages=", ".join(skipped)))
        return "; ".join(reasons)

    def _exit_gate_log(self, passages, overridden, stage_id):
        """Note in each deal's chatter what the gate let pass: the checks it missed, and the
        sales manager's override."""
        stage = self.env["crm.stage"].browse(stage_id)
        bodies = {}
        for lead, passage in passages.items():
            if not passage["missing"] and lead not in overridden:
                continue
            reasons = self._exit_gate_reasons(lead, passage)
            if lead in overridden:
                text = self.env._(
                    "Moved on to %(stage)s past the stage gate by %(user)s: %(reasons)s.",
                    stage=stage.name,
                    user=self.env.user.name,
                    reasons=reasons,
                )
            else:
                text = self.env._(
                    "Moved on to %(stage)s without its exit criteria: %(reasons)s.",
                    stage=stage.name,
                    reasons=reasons,
                )
            bodies[lead.id] = Markup("<p>%s</p>") % text
        if bodies:
            self.browse(list(bodies))._message_log_batch(bodies=bodies)
        warned = [lead for lead, passage in passages.items() if passage["missing"]]
        if warned and not self.env.su:
            self._exit_gate_notify(warned, passages, stage)

    def _exit_gate_notify(self, warned, passages, stage):
        """Tell the user who moved the deals, on the screen they moved them from."""
        if len(warned) == 1:
            message = self.env._(
                "“%(deal)s” moved on to %(stage)s: %(reasons)s.",
                deal=warned[0].display_name,
                stage=stage.name,
                reasons=self._exit_gate_reasons(warned[0], passages[warned[0]]),
            )
        else:
            message = self.env._(
                "%(count)s deals moved on to %(stage)s without their exit criteria: their "
                "chatter says which.",
                count=len(warned),
                stage=stage.name,
            )
        self.env.user._bus_send(
            "simple_notification",
            {"type": "warning", "title": self.env._("Exit criteria missing"), "message": message},
        )
