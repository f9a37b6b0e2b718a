from odoo import models

from ..models.crm_lead_import import (
    IMPORT_DUPLICATE_MODES,
    IMPORT_DUPLICATES_CONTEXT_KEY,
    IMPORT_REPORT_CONTEXT_KEY,
)

# Rows listed by name in the Test button's report.
REPORTED_ROWS = 10


class BaseImportImport(models.TransientModel):
    """The import dialog's choice for leads that already exist reaches crm.lead's load."""

    _inherit = "base_import.import"

    def execute_import(self, fields, columns, options, dryrun=False):
        mode = options.get(IMPORT_DUPLICATES_CONTEXT_KEY)
        if self.res_model != "crm.lead" or mode not in IMPORT_DUPLICATE_MODES:
            return super().execute_import(fields, columns, options, dryrun=dryrun)
        report = []
        result = super(
            BaseImportImport,
            self.with_context(
                **{IMPORT_DUPLICATES_CONTEXT_KEY: mode, IMPORT_REPORT_CONTEXT_KEY: report}
            ),
        ).execute_import(fields, columns, options, dryrun=dryrun)
        if dryrun and report and not result.get("messages"):
            result["messages"] = [self._duplicates_report_message(report, mode)]
        return result

    def _duplicates_report_message(self, report, mode):
        action = {
            "review": self.env._("they will be imported and listed for review in Duplicates"),
            "merge": self.env._("they will be merged into the leads they match"),
            "skip": self.env._("they will be skipped"),
        }[mode]
        shown = "; ".join(
            self.env._("row %(row)s: %(match)s", row=row, match=match)
            for row, match in report[:REPORTED_ROWS]
        )
        if len(report) > REPORTED_ROWS:
            shown += "; …"
        return {
            "type": "info",
            "message": self.env._(
                "%(count)s rows match existing leads or earlier rows, %(action)s: %(rows)s.",
                count=len(report),
                action=action,
                rows=shown,
            ),
        }
