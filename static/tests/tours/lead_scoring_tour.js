import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("crm_pipeline_optimizer_lead_scoring", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "Open the opportunity from its card",
            trigger: ".o_kanban_record:contains(Tour scored deal)",
            run: "click",
        },
        {
            content: "A fresh opportunity scores 0 / 100",
            trigger:
                "div[name=opportunity_score]:contains(/ 100) .o_field_widget[name=score]:contains(0)",
        },
        {
            content: "Open the Qualification tab",
            trigger: ".o_notebook a:contains(Qualification)",
            run: "click",
        },
        {
            content: "Tick Budget Confirmed",
            trigger: ".o_field_widget[name=is_budget_confirmed] input",
            run: "click",
        },
        {
            content: "Tick Decision Maker Identified",
            trigger: ".o_field_widget[name=has_decision_maker] input",
            run: "click",
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "The score follows at once: 30 + 25",
            trigger:
                ".o_form_saved div[name=opportunity_score] .o_field_widget[name=score]:contains(55)",
        },
        {
            content: "The explanation names each criterion and its points",
            trigger:
                ".o_field_widget[name=score_explanation]:contains(+30 Budget confirmed):contains(+25 Decision maker identified)",
        },
    ],
});
