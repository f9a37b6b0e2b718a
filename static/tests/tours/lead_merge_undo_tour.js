import { registry } from "@web/core/registry";

const twins = ["Tour twin A", "Tour twin B", "Tour twin C"];

registry.category("web_tour.tours").add("crm_pipeline_optimizer_merge_undo", {
    url: "/odoo/action-crm.crm_lead_action_pipeline?view_type=list",
    steps: () => [
        ...twins.map((name) => ({
            content: `Select ${name}`,
            trigger: `.o_data_row:contains(${name}) .o_list_record_selector input`,
            run: "click",
        })),
        {
            content: "Open the Actions menu",
            trigger: ".o_control_panel .o_cp_action_menus .dropdown-toggle",
            run: "click",
        },
        {
            content: "One merge in the menu: crm's, which is the module's",
            trigger:
                ".o-dropdown--menu:not(:has(.o-dropdown-item:contains(Merge Duplicates))) .o-dropdown-item:contains(Merge)",
            run: "click",
        },
        {
            content: "The wizard says which record is kept",
            trigger: ".modal .o_field_widget[name=master_id] input",
        },
        {
            content: "Merge",
            trigger: ".modal button[name=action_merge]",
            run: "click",
        },
        {
            content: "The kept record offers to undo the merge",
            trigger: ".o_form_view .o_form_statusbar button[name=action_undo_merge]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The merge is undone: the chatter says so and the button is gone",
            trigger:
                ".o_form_view:not(:has(button[name=action_undo_merge])) .o-mail-Message:contains(Merge undone)",
        },
    ],
});
