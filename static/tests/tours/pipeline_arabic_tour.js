import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("crm_pipeline_optimizer_arabic", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "The web client is right to left",
            trigger: "body.o_rtl .o_kanban_renderer",
        },
        {
            content: "The stale marker speaks Arabic",
            trigger:
                ".o_kanban_record:contains(Arabic stuck deal) .o_pipeline_stale:contains(راكدة)",
        },
        {
            content: "The overdue days are on the card",
            trigger:
                ".o_kanban_record:contains(Arabic stuck deal) .o_pipeline_days_in_stage.text-bg-danger:contains(30)",
        },
        {
            content: "The card's badges sit at the start of the line, on the right",
            trigger: ".o_kanban_record:contains(Arabic stuck deal) .o_pipeline_stage_clock",
            run() {
                const clock = this.anchor.querySelector(".badge").getBoundingClientRect();
                const card = this.anchor.closest(".o_kanban_record").getBoundingClientRect();
                if (card.right - clock.right > clock.left - card.left) {
                    throw new Error("The badges are not aligned to the right in RTL");
                }
            },
        },
        {
            content: "Open the deal",
            trigger: ".o_kanban_record:contains(Arabic stuck deal)",
            run: "click",
        },
        {
            content: "The form is right to left, its Qualification tab in Arabic",
            trigger: "body.o_rtl .o_form_view .o_notebook a:contains(التأهيل)",
        },
        {
            content: "Its stage clock reads overdue, in Arabic",
            trigger: ".o_form_view div[name=opportunity_stage_clock]:contains(متأخرة)",
        },
        {
            content: "Open the dashboard from the menu",
            trigger:
                ".o_main_navbar a[data-menu-xmlid='crm_pipeline_optimizer.crm_pipeline_dashboard_menu']",
            run: "click",
        },
        {
            content: "The dashboard speaks Arabic",
            trigger: ".o_pipeline_dashboard_scope:contains(مساري)",
        },
        {
            content: "Its KPI cards too",
            trigger: ".o_pipeline_kpi_win_rate:contains(معدل الفوز)",
        },
        {
            content: "Charts are drawn",
            trigger: ".o_pipeline_chart canvas",
        },
    ],
});

registry.category("web_tour.tours").add("crm_pipeline_optimizer_persian", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "The web client is right to left",
            trigger: "body.o_rtl .o_kanban_renderer",
        },
        {
            content: "The stale marker speaks Persian",
            trigger:
                ".o_kanban_record:contains(Arabic stuck deal) .o_pipeline_stale:contains(راکد)",
        },
        {
            content: "Open the deal",
            trigger: ".o_kanban_record:contains(Arabic stuck deal)",
            run: "click",
        },
        {
            content: "The form's Qualification tab in Persian",
            trigger: "body.o_rtl .o_form_view .o_notebook a:contains(واجد شرایط بودن)",
        },
    ],
});
