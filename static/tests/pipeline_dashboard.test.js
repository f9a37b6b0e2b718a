import { beforeEach, describe, expect, test } from "@odoo/hoot";
import { queryAll, queryAllTexts, queryFirst, select } from "@odoo/hoot-dom";
import { animationFrame } from "@odoo/hoot-mock";
import {
    contains,
    makeMockEnv,
    mockService,
    mountWithCleanup,
    onRpc,
    patchWithCleanup,
    preloadBundle,
} from "@web/../tests/web_test_helpers";
import { assets } from "@web/core/assets";
import { localization } from "@web/core/l10n/localization";

import { PipelineDashboard } from "@crm_pipeline_optimizer/dashboard/pipeline_dashboard";
import { defineMailModels } from "@mail/../tests/mail_test_helpers";

// crm brings mail, whose services start in every web client.
defineMailModels();
describe.current.tags("desktop");
preloadBundle("web.chartjs_lib");

const OPEN = [
    ["type", "=", "opportunity"],
    ["active", "=", true],
];
const WON = [
    ["active", "=", true],
    ["stage_id.is_won", "=", true],
];

function kpi(value, previous, band = null, domain = WON) {
    return { value, previous, band, domain };
}

/** What get_dashboard_data returns, for one reader and one period. */
function dashboardData({ period = "month", teamId = null, scope = "company" } = {}) {
    const scale = teamId ? 1 : 2;
    return {
        scope,
        period: { name: period, start: "2026-12-01", end: "2026-12-31" },
        currency_id: 1,
        teams: [
            { id: 1, name: "Sales" },
            { id: 4, name: "Pre-Sales" },
        ],
        target: 0,
        kpis: {
            // below, inside and above their healthy bands; one without a value
            conversion_rate: kpi(teamId ? 12 : 10, 5, [15, 30], [["type", "=", "opportunity"]]),
            win_rate: kpi(25, 30, [20, 40]),
            deal_size: kpi(7933.33, null),
            cycle_days: kpi(95, 100, [30, 90]),
            coverage: kpi(null, null, [3, 5], OPEN),
            activity_to_close: kpi(0, null),
            won_count: kpi(3 * scale, 0),
            won_amount: kpi(23800, 0),
            lost_count: kpi(5, 0, null, [["active", "=", false]]),
            open_count: kpi(16, 16, null, OPEN),
            open_amount: kpi(464400, 464400, null, OPEN),
            created_count: kpi(2, 34, null, [["create_date", ">=", "2026-11-30 23:00:00"]]),
        },
        charts: {
            pipeline_by_stage: [
                { label: "New", count: 3, amount: 104000, domain: [["stage_id", "=", 1]] },
                { label: "Qualified", count: 5, amount: 87300, domain: [["stage_id", "=", 2]] },
            ],
            leads_by_source: [
                { month: "2026-11-01", label: "Web", count: 4 },
                { month: "2026-12-01", label: "Web", count: 6 },
            ],
            lost_by_reason: [
                { label: "Too expensive", count: 5, domain: [["lost_reason_id", "=", 1]] },
            ],
            activities_by_salesperson: [{ label: "Mitchell Admin", planned: 4, done: 2 }],
            time_to_win: [{ month: "2026-12-01", days: 5 }],
        },
    };
}

let dashboardCalls;

beforeEach(() => {
    dashboardCalls = [];
    // Loaded once for the suite (preloadBundle): the component's own call is then a no-op.
    patchWithCleanup(assets, { loadBundle: async () => {} });
    onRpc("crm.pipeline.dashboard", "get_dashboard_data", ({ kwargs }) => {
        dashboardCalls.push({ period: kwargs.period, team_id: kwargs.team_id });
        return dashboardData({ period: kwargs.period, teamId: kwargs.team_id });
    });
    onRpc("crm.pipeline.dashboard", "get_exit_criteria_data", () => []);
});

function kpiCard(name) {
    return `.o_pipeline_kpi_${name}`;
}

test("each KPI is shown with its health band", async () => {
    await mountWithCleanup(PipelineDashboard);
    expect(".o_pipeline_kpi").toHaveCount(6);
    expect(kpiCard("conversion_rate")).toHaveClass("o_pipeline_kpi_low");
    expect(`${kpiCard("conversion_rate")} .o_pipeline_kpi_band .badge`).toHaveText("low");
    expect(kpiCard("win_rate")).toHaveClass("o_pipeline_kpi_healthy");
    expect(kpiCard("cycle_days")).toHaveClass("o_pipeline_kpi_high");
    expect(`${kpiCard("cycle_days")} .o_pipeline_kpi_value`).toHaveText("95.0 days");
    // No value: no health, a dash; no band: no band line.
    expect(kpiCard("coverage")).not.toHaveClass("o_pipeline_kpi_low");
    expect(`${kpiCard("coverage")} .o_pipeline_kpi_value`).toHaveText("—");
    expect(`${kpiCard("deal_size")} .o_pipeline_kpi_band`).toHaveCount(0);
    // A lower sales cycle is better: down is green, a higher win rate is.
    expect(`${kpiCard("cycle_days")} .fa-arrow-down`).toHaveClass("text-success");
    expect(`${kpiCard("win_rate")} .fa-arrow-down`).toHaveClass("text-danger");
    expect(`${kpiCard("conversion_rate")} .fa-arrow-up`).toHaveClass("text-success");
    expect(queryAllTexts(".o_pipeline_summary")).toEqual([
        "6 Won",
        "5 Lost",
        "16 Open opportunities",
        "2 New leads",
    ]);
    expect(".o_pipeline_dashboard_scope").toHaveText("Company");
});

test("the period and team filters reload the figures", async () => {
    await mountWithCleanup(PipelineDashboard);
    expect(dashboardCalls).toEqual([{ period: "month", team_id: null }]);
    await contains(".o_pipeline_dashboard_period").select("quarter");
    await animationFrame();
    expect(dashboardCalls.at(-1)).toEqual({ period: "quarter", team_id: null });
    expect(queryAllTexts(".o_pipeline_dashboard_team option")).toEqual([
        "All my teams",
        "Sales",
        "Pre-Sales",
    ]);
    await select("4", { target: ".o_pipeline_dashboard_team" });
    await animationFrame();
    expect(dashboardCalls.at(-1)).toEqual({ period: "quarter", team_id: 4 });
    // The team's own figures (half the company's here).
    expect(".o_pipeline_summary_won_count").toHaveText("3 Won");
    expect(`${kpiCard("conversion_rate")} .o_pipeline_kpi_value`).toHaveText("12.0 %");
});

test("KPIs, summary links and chart bars drill down to their deals", async () => {
    mockService("action", {
        doAction(action) {
            expect.step([action.res_model, String(action.name), action.domain]);
        },
    });
    const dashboard = await mountWithCleanup(PipelineDashboard);
    await contains(kpiCard("coverage")).click();
    await contains(".o_pipeline_summary_lost_count").click();
    // A click on the second bar of the stage chart.
    const stageChart = dashboard.charts[0];
    stageChart.config.options.onClick({}, [{ index: 1 }]);
    expect.verifySteps([
        ["crm.lead", "Pipeline coverage", OPEN],
        ["crm.lead", "Lost", [["active", "=", false]]],
        ["crm.lead", "Qualified", [["stage_id", "=", 2]]],
    ]);
});

test("the report button prints the health report of the teams shown", async () => {
    mockService("action", {
        doAction(action, options) {
            expect.step([action, options.additionalContext]);
        },
    });
    await mountWithCleanup(PipelineDashboard);
    await contains(".o_pipeline_dashboard_print").click();
    expect.verifySteps([
        [
            "crm_pipeline_optimizer.action_report_pipeline_health",
            { active_ids: [1, 4], active_model: "crm.team" },
        ],
    ]);
});

test("charts are drawn for each figure, left to right", async () => {
    const dashboard = await mountWithCleanup(PipelineDashboard);
    expect(queryAll(".o_pipeline_chart canvas")).toHaveLength(5);
    expect(dashboard.charts).toHaveLength(5);
    const [stage, source] = dashboard.charts;
    expect(stage.data.labels).toEqual(["New", "Qualified"]);
    expect(stage.data.datasets[0].data).toEqual([104000, 87300]);
    expect(source.data.labels).toEqual(["2026-11", "2026-12"]);
    expect(Boolean(stage.config.options.scales.x.reverse)).toBe(false);
    expect(stage.config.options.plugins.legend.rtl).toBe(false);
});

test("right to left: charts run from the right, their axis on the right", async () => {
    // After the localization service has set the user's language up.
    await makeMockEnv();
    patchWithCleanup(localization, { direction: "rtl" });
    const dashboard = await mountWithCleanup(PipelineDashboard);
    for (const chart of dashboard.charts.filter((chart) => chart.config.type !== "doughnut")) {
        expect(chart.config.options.scales.x.reverse).toBe(true);
        expect(chart.config.options.scales.y.position).toBe("right");
    }
    expect(dashboard.charts[0].config.options.plugins.legend.rtl).toBe(true);
    expect(queryFirst(".o_pipeline_kpi")).toBeVisible();
});

function forecastPeriod(index, values) {
    const categories = ["commit", "best_case", "pipeline", "omitted"].map((name, position) => ({
        name,
        label: ["Commit", "Best Case", "Pipeline", "Omitted"][position],
        count: values.counts[position],
        amount: values.amounts[position],
        domain: [...OPEN, ["forecast_category", "=", name]],
    }));
    return {
        index,
        start: index ? "2026-02-01" : "2026-01-01",
        end: index ? "2026-02-28" : "2026-01-31",
        won: { amount: values.won, count: 1, domain: WON },
        open: { amount: 150000, count: 3, domain: OPEN },
        weighted_probability: values.weighted_probability,
        weighted_likelihood: values.weighted_likelihood,
        categories,
        target: values.target,
        gap: values.gap,
        commit_coverage: values.gap ? values.amounts[0] / values.gap : null,
        weighted_coverage: values.gap ? values.weighted_likelihood / values.gap : null,
        forecast: values.won + values.weighted_likelihood,
    };
}

test("the forecast tab reads its own figures and drills down", async () => {
    const forecastCalls = [];
    onRpc("crm.pipeline.dashboard", "get_forecast_data", ({ kwargs }) => {
        forecastCalls.push(kwargs.period);
        return {
            scope: "company",
            currency_id: 1,
            periods: [
                forecastPeriod(0, {
                    won: 20000,
                    weighted_probability: 60000,
                    weighted_likelihood: 55000,
                    counts: [1, 1, 0, 1],
                    amounts: [100000, 50000, 0, 70000],
                    target: 200000,
                    gap: 180000,
                }),
                forecastPeriod(1, {
                    won: 0,
                    weighted_probability: 0,
                    weighted_likelihood: 0,
                    counts: [0, 0, 0, 0],
                    amounts: [0, 0, 0, 0],
                    target: 0,
                    gap: null,
                }),
            ],
            hygiene: {
                passed: { count: 0, domain: OPEN, deals: [] },
                pushed: {
                    count: 1,
                    domain: OPEN,
                    deals: [
                        {
                            id: 9,
                            name: "Pushed deal",
                            user: "Sam",
                            date_deadline: "2026-01-20",
                            pushes: 2,
                            days_pushed: 30,
                            amount: 1000,
                        },
                    ],
                },
            },
            accuracy: [],
            calibration: { buckets: [], deals: 0, month_before: 0 },
        };
    });
    const opened = [];
    mockService("action", { doAction: (action) => opened.push(action.domain) });
    await mountWithCleanup(PipelineDashboard);
    expect(".o_pipeline_forecast").toHaveCount(0);
    expect(forecastCalls).toEqual([], { message: "loaded when its tab opens" });
    await contains(".o_pipeline_tab_forecast").click();
    await animationFrame();
    expect(forecastCalls).toEqual(["month"]);
    expect(".o_pipeline_kpi").toHaveCount(0, { message: "the overview is put away" });
    const thisPeriod = ".o_pipeline_forecast_period_0";
    expect(`${thisPeriod} .o_pipeline_forecast_category_commit td:last-child`).toHaveText(
        "$ 100,000 (1)"
    );
    expect(`${thisPeriod} .o_pipeline_forecast_coverage td:last-child`).toHaveText("0.56× / 0.31×");
    expect(".o_pipeline_forecast_period_1 .o_pipeline_forecast_coverage td:last-child").toHaveText(
        "— / —"
    );
    expect(".o_pipeline_forecast_hygiene_pushed").toHaveText(/^1\s*pushed back/);
    expect(".o_pipeline_forecast_accuracy").toHaveCount(0, { message: "no ended period yet" });
    await contains(`${thisPeriod} .o_pipeline_forecast_category_commit a`).click();
    expect(opened.at(-1)).toEqual([...OPEN, ["forecast_category", "=", "commit"]]);
    await contains(".o_pipeline_dashboard_period").select("quarter");
    await animationFrame();
    expect(forecastCalls.at(-1)).toBe("quarter");
});
