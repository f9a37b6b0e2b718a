import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("crm_pipeline_optimizer_stage_tooltip", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "The seeded stages are columns of the pipeline",
            trigger:
                ".o_kanban_renderer:has(.o_column_title:contains(New)):has(.o_column_title:contains(Qualified)):has(.o_column_title:contains(Proposal)):has(.o_column_title:contains(Won))",
        },
        {
            content: "Hover the Negotiation column's title",
            trigger: ".o_kanban_group .o_column_title:contains(Negotiation)",
            run: "hover",
        },
        {
            content: "Its tooltip gives the expected duration and the exit criteria",
            trigger: ".o-tooltip:contains(7–21 days):contains(Scope and price agreed.)",
        },
    ],
});
