import { registry } from "@web/core/registry";

const column = (stage) => `.o_kanban_group:has(.o_column_title:contains(${stage}))`;

registry.category("web_tour.tours").add("crm_pipeline_optimizer_exit_criteria", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "The qualified deal meets one of its stage's two checks",
            trigger: `${column(
                "Qualified"
            )} .o_kanban_record:contains(Tour gate deal) .o_pipeline_exit_checks:contains(1/2)`,
        },
        {
            content: "A deal meeting all its checks shows them complete",
            trigger:
                ".o_kanban_record:contains(Tour ready deal) .o_pipeline_exit_checks_complete:contains(1/1)",
        },
        {
            content: "Drag the qualified deal on to Proposal",
            trigger: ".o_kanban_record:contains(Tour gate deal)",
            run: `drag_and_drop (${column("Proposal")})`,
        },
        {
            content: "The card moved, marked with a warning that it skipped its criteria",
            trigger: `${column(
                "Proposal"
            )} .o_kanban_record:contains(Tour gate deal) .o_pipeline_exit_skipped[title*="without its exit criteria"]`,
        },
        {
            content: "Drag the deal with no proposal sent past the blocking stage",
            trigger: ".o_kanban_record:contains(Tour blocked deal)",
            run: `drag_and_drop (${column("Negotiation")})`,
        },
        {
            content: "The move is refused, naming the missing check",
            trigger: ".modal:contains(cannot move on to Negotiation):contains(Proposal sent)",
        },
        {
            content: "Close the message",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The card is back in Proposal",
            trigger: `body:not(:has(.modal)) ${column(
                "Proposal"
            )} .o_kanban_record:contains(Tour blocked deal)`,
        },
    ],
});
