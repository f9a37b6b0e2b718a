import { registry } from "@web/core/registry";

const CSV = [
    "Opportunity,Email,Phone,Contact Name",
    "Acme again,John.Smith12@ACME12.example.com,+1 202 555 0123,John Smith",
    "Brand new,new.customer@example.com,,New Customer",
].join("\n");

registry.category("web_tour.tours").add("crm_pipeline_optimizer_import_duplicates", {
    url: "/odoo/action-crm.crm_lead_action_pipeline?view_type=list",
    steps: () => [
        {
            content: "Open the gear menu",
            trigger: ".o_control_panel .o_cp_action_menus button",
            run: "click",
        },
        {
            content: "Import records",
            trigger: ".o-dropdown-item:contains(Import records)",
            run: "click",
        },
        {
            content: "Upload a CSV file of leads",
            trigger: "button.o_import_file",
            run() {
                const input = document.querySelector(".o_control_panel input[type=file]");
                const transfer = new DataTransfer();
                transfer.items.add(new File([CSV], "leads.csv", { type: "text/csv" }));
                input.files = transfer.files;
                input.dispatchEvent(new Event("change", { bubbles: true }));
            },
        },
        {
            content: "The import asks what to do with leads that already exist",
            trigger: ".o_import_crm_duplicates select",
            run: "select merge",
        },
        {
            content: "Test the import",
            trigger: ".o_control_panel button:contains(Test)",
            run: "click",
        },
        {
            content: "The test says which row is a lead the database has",
            trigger: ".o_import_action .alert-info:contains(row 1: Existing Acme deal)",
        },
        {
            content: "Import",
            trigger: ".o_control_panel button.btn-primary:contains(Import)",
            run: "click",
        },
        {
            content: "Back to the leads",
            trigger: ".o_list_view",
        },
    ],
});
