from odoo import api, fields, models
from odoo.exceptions import ValidationError

QUALIFICATION_FIELDS = frozenset(
    {
        "is_budget_confirmed",
        "has_decision_maker",
        "purchase_timeline",
        "has_pain_point",
        "employee_count",
        "is_scope_price_agreed",
    }
)


class CrmLead(models.Model):
    """Qualification facts a salesperson ticks or fills in."""

    _inherit = "crm.lead"

    # Qualification facts a salesperson ticks or fills in.
    is_budget_confirmed = fields.Boolean(
        string="Budget Confirmed", help="The customer confirmed a budget for this purchase."
    )
    has_decision_maker = fields.Boolean(
        string="Decision Maker Identified",
        help="We talk to someone who decides the purchase (C-level or VP).",
    )
    purchase_timeline = fields.Selection(
        [
            ("90_days", "Within 90 days"),
            ("6_months", "Within 6 months"),
            ("later", "Later than 6 months"),
        ],
    )
    has_pain_point = fields.Boolean(
        string="Pain Point Identified",
        help="The customer has a current pain: a competitor they are unhappy with, "
        "a process that hurts.",
    )
    employee_count = fields.Integer(string="Employees", help="Size of the customer's company.")
    is_scope_price_agreed = fields.Boolean(
        string="Scope and Price Agreed",
        help="The customer agreed on what we deliver and at what price.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_qualification_input(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._check_qualification_input(vals)
        return super().write(vals)

    @api.model
    def _check_qualification_input(self, vals):
        """Qualification facts often come from web forms and integrations through the
        external API: refuse a wrong type with a message naming the fact, rather than a
        database or conversion error."""
        for fname in QUALIFICATION_FIELDS & set(vals):
            value, field = vals[fname], self._fields[fname]
            if field.type == "boolean":
                valid = value in (True, False, None, 0, 1)
            elif field.type == "integer":
                valid = value in (False, None) or (
                    isinstance(value, int) and not isinstance(value, bool) and value >= 0
                )
            else:
                valid = value in (False, None) or (
                    isinstance(value, str) and value in dict(field._description_selection(self.env))
                )
            if not valid:
                raise ValidationError(
                    self.env._(
                        "“%(value)s” is not a valid value for %(fact)s.",
                        value=value,
                        fact=field._description_string(self.env),
                    )
                )
