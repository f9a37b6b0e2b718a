from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.osv import expression
from odoo.tools.safe_eval import safe_eval


class CrmLeadConditionMixin(models.AbstractModel):
    """A condition on leads written with Odoo's domain editor, checked when saved."""

    _name = "crm.lead.condition.mixin"
    _description = "Condition on Leads"

    domain = fields.Char(
        string="Condition",
        required=True,
        default="[]",
        help="A filter on leads, written with the domain editor.",
    )

    @api.constrains("domain")
    def _check_domain(self):
        # sudo: whether the condition is a valid filter on leads, not what the editor sees.
        Lead = self.env["crm.lead"].sudo()
        for condition in self:
            try:
                Lead._search(condition._get_domain()).select()
            except Exception as error:
                raise ValidationError(
                    self.env._(
                        "The condition of “%(name)s” is not a valid filter on leads: %(error)s",
                        name=condition.display_name,
                        error=error,
                    )
                ) from error

    def _get_domain(self):
        self.ensure_one()
        domain = safe_eval(self.domain or "[]", {"context": {}})
        if not isinstance(domain, list | tuple):
            raise ValueError(self.env._("a condition is a list of (field, operator, value)"))
        return expression.normalize_domain(list(domain))
