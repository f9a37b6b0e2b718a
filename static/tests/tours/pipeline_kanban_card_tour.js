import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("crm_pipeline_optimizer_kanban_card", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "The overdue card shows its days in stage in red",
            trigger:
                ".o_kanban_record:contains(Tour stuck deal) .o_pipeline_days_in_stage.text-bg-danger:contains(30)",
        },
        {
            content: "… is marked stale",
            trigger: ".o_kanban_record:contains(Tour stuck deal) .o_pipeline_stale",
        },
        {
            content: "… and shows its score",
            trigger:
                ".o_kanban_record:contains(Tour stuck deal) .o_pipeline_score_badge:contains(30)",
        },
        {
            content: "A fresh deal is on track and not stale",
            trigger:
                ".o_kanban_record:contains(Tour fresh deal):not(:has(.o_pipeline_stale)) .o_pipeline_days_in_stage.text-bg-light:contains(0)",
        },
        {
            content: "Open the filters",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Keep the stale deals",
            trigger: ".o_filter_menu .o_menu_item:contains(Stale)",
            run: "click",
        },
        {
            content: "The fresh deal is gone, the stuck one stays",
            trigger:
                ".o_kanban_renderer:not(:has(.o_kanban_record:contains(Tour fresh deal))) .o_kanban_record:contains(Tour stuck deal)",
        },
    ],
});
