import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("crm_pipeline_optimizer_dashboard_salesperson", {
    url: "/odoo/action-crm_pipeline_optimizer.action_crm_pipeline_dashboard",
    steps: () => [
        {
            content: "A salesperson sees their own pipeline",
            trigger: ".o_pipeline_dashboard_scope:contains(My pipeline)",
        },
        {
            content: "Their win rate: one won, one lost this month",
            trigger: ".o_pipeline_kpi_win_rate .o_pipeline_kpi_value:contains(50.0 %)",
        },
        {
            content: "Their conversion: 3 of 4 created are opportunities",
            trigger: ".o_pipeline_kpi_conversion_rate .o_pipeline_kpi_value:contains(75.0 %)",
        },
        {
            content: "The charts are drawn",
            trigger: ".o_pipeline_chart canvas",
        },
        {
            content: "Drill down into the deals won",
            trigger: ".o_pipeline_summary_won_count",
            run: "click",
        },
        {
            content: "The list holds the won deal, and only it",
            trigger: ".o_list_view .o_data_row:contains(Won 1)",
        },
        {
            content: "One row",
            trigger: ".o_list_view:not(:has(.o_data_row:nth-child(2)))",
        },
    ],
});

registry.category("web_tour.tours").add("crm_pipeline_optimizer_dashboard_manager", {
    url: "/odoo/action-crm_pipeline_optimizer.action_crm_pipeline_dashboard",
    steps: () => [
        {
            content: "A sales manager sees the company",
            trigger: ".o_pipeline_dashboard_scope:contains(Company)",
        },
        {
            content: "Narrow to the team",
            trigger: "select.o_pipeline_dashboard_team",
            run: "selectByLabel Pipeline Team",
        },
        {
            content: "The team's win rate: 2 won of 5 closed",
            trigger: ".o_pipeline_kpi_win_rate .o_pipeline_kpi_value:contains(40.0 %)",
        },
        {
            content: "Coverage against the team's target: 60,000 open for 20,000",
            trigger: ".o_pipeline_kpi_coverage .o_pipeline_kpi_value:contains(3.00×)",
        },
        {
            content: "Healthy band shown",
            trigger: ".o_pipeline_kpi_coverage.o_pipeline_kpi_healthy",
        },
        {
            content: "Drill down from the win rate card",
            trigger: ".o_pipeline_kpi_win_rate",
            run: "click",
        },
        {
            content: "Both won deals are listed",
            trigger:
                ".o_list_view:has(.o_data_row:contains(Won 1)):has(.o_data_row:contains(Won 2))",
        },
    ],
});
