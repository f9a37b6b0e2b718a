from odoo import api, fields, models
from odoo.exceptions import ValidationError


class CrmStage(models.Model):
    _name = "crm.stage"
    _inherit = ["crm.stage", "crm.exit.gate.cache.mixin"]
    # The gate reads the stages' order and gates.
    _exit_gate_cached_fields = ("exit_gate", "sequence", "name", "team_id", "is_won")

    expected_days_min = fields.Integer(
        string="Expected Days (min)",
        help="Fewest days an opportunity usually spends in this stage.",
    )
    expected_days_max = fields.Integer(
        string="Expected Days (max)",
        help="Days after which an opportunity in this stage is overdue. "
        "Zero means the stage has no time limit.",
    )
    exit_criteria = fields.Text(
        translate=True,
        help="What must be true before an opportunity leaves this stage. "
        "Shown to salespeople on the pipeline's column header.",
    )
    exit_check_ids = fields.One2many(
        "crm.stage.exit.check",
        "stage_id",
        string="Exit Checks",
        help="Conditions an opportunity meets before it moves on from this stage.",
    )
    exit_gate = fields.Selection(
        [("warn", "Warn"), ("block", "Block")],
        string="When Checks Are Missing",
        default="warn",
        required=True,
        help="Warn: the opportunity moves on, is marked and its chatter names the missing "
        "checks. Block: the move is refused; sales managers may still move it, which is "
        "logged.",
    )
    expected_duration_display = fields.Char(
        string="Expected Duration",
        compute="_compute_expected_duration_display",
    )

    @api.depends("expected_days_min", "expected_days_max")
    @api.depends_context("lang")
    def _compute_expected_duration_display(self):
        for stage in self:
            low, high = stage.expected_days_min, stage.expected_days_max
            if not high:
                stage.expected_duration_display = False
            elif low == high:
                stage.expected_duration_display = self.env._("%(days)s days", days=high)
            else:
                stage.expected_duration_display = self.env._(
                    "%(min)s–%(max)s days", min=low, max=high
                )

    @api.constrains("expected_days_min", "expected_days_max")
    def _check_expected_days(self):
        for stage in self:
            if stage.expected_days_min < 0 or stage.expected_days_max < 0:
                raise ValidationError(
                    self.env._(
                        "Stage “%(stage)s”: expected days cannot be negative.",
                        stage=stage.name,
                    )
                )
            if stage.expected_days_max and stage.expected_days_min > stage.expected_days_max:
                raise ValidationError(
                    self.env._(
                        "Stage “%(stage)s”: the minimum expected days (%(min)s) cannot "
                        "exceed the maximum (%(max)s).",
                        stage=stage.name,
                        min=stage.expected_days_min,
                        max=stage.expected_days_max,
                    )
                )
