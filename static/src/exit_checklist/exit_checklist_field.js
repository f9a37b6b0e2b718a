import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

/** The exit checks of the deal's stage, each ticked when the deal meets it. */
export class ExitChecklistField extends Component {
    static template = "crm_pipeline_optimizer.ExitChecklistField";
    static props = { ...standardFieldProps };

    get checks() {
        return this.props.record.data[this.props.name] || [];
    }

    get summary() {
        const met = this.checks.filter((check) => check.met).length;
        return _t("%(met)s of %(count)s met", { met, count: this.checks.length });
    }
}

registry.category("fields").add("exit_checklist", {
    component: ExitChecklistField,
    supportedTypes: ["json"],
});
