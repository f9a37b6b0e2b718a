import { registry } from "@web/core/registry";

const thisPeriod = ".o_pipeline_forecast_period_0";

registry.category("web_tour.tours").add("crm_pipeline_optimizer_forecast_manager", {
    url: "/odoo/action-crm_pipeline_optimizer.action_crm_pipeline_dashboard",
    steps: () => [
        {
            content: "Narrow to the forecast team",
            trigger: "select.o_pipeline_dashboard_team",
            run: "selectByLabel Forecast Tour Team",
        },
        {
            content: "Open the stage flow",
            trigger: ".o_pipeline_tab_flow",
            run: "click",
        },
        {
            content: "The three deals entered New this period and are still there",
            trigger:
                ".o_pipeline_funnel_stage:contains(New) .o_pipeline_funnel_entered:contains(3)",
        },
        {
            content: "Open the forecast",
            trigger: ".o_pipeline_tab_forecast",
            run: "click",
        },
        {
            content: "Weighted by crm's probability: 100,000 × 50 % + 50,000 × 20 %",
            trigger: `${thisPeriod} .o_pipeline_forecast_weighted_probability:contains(60,000)`,
        },
        {
            content: "Commit: the one deal the salesperson committed",
            trigger: `${thisPeriod} .o_pipeline_forecast_category_commit:contains(100,000):contains((1))`,
        },
        {
            content: "Against the team's target of 200,000",
            trigger: `${thisPeriod} .o_pipeline_forecast_target:contains(200,000)`,
        },
        {
            content: "Commit covers half of the gap",
            trigger: `${thisPeriod} .o_pipeline_forecast_coverage:contains(0.50×)`,
        },
        {
            content: "The deal past its expected closing is listed",
            trigger: ".o_pipeline_forecast_hygiene_passed:contains(Tour late deal)",
        },
        {
            content: "The calibration is shown",
            trigger: ".o_pipeline_calibration",
        },
        {
            content: "Drill down into the commit",
            trigger: `${thisPeriod} .o_pipeline_forecast_category_commit a`,
            run: "click",
        },
        {
            content: "The list holds the committed deal",
            trigger: ".o_list_view .o_data_row:contains(Tour committed deal)",
        },
        {
            content: "And only it",
            trigger: ".o_list_view:not(:has(.o_data_row:nth-child(2)))",
        },
    ],
});

registry.category("web_tour.tours").add("crm_pipeline_optimizer_forecast_category", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "Open the salesperson's deal",
            trigger: ".o_kanban_record:contains(Tour best case deal)",
            run: "click",
        },
        {
            content: "The deal's form",
            trigger: ".o_form_view .o_field_widget[name=expected_revenue]",
        },
        {
            content: "Set the deal's category, Best Case, to Commit",
            trigger:
                ".o_field_widget[name=forecast_category] select:has(option:selected:contains(Best Case))",
            run: "selectByLabel Commit",
        },
        {
            content: "Save",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Saved",
            trigger: ".o_form_saved",
        },
    ],
});
