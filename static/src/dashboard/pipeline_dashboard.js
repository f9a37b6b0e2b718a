import {
    Component,
    onMounted,
    onPatched,
    onWillStart,
    onWillUnmount,
    useRef,
    useState,
} from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { _t } from "@web/core/l10n/translation";
import { localization } from "@web/core/l10n/localization";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { formatFloat, formatMonetary } from "@web/views/fields/formatters";

const KPI_DEFINITIONS = [
    { name: "conversion_rate", label: _t("Lead → opportunity"), unit: "%" },
    { name: "win_rate", label: _t("Win rate"), unit: "%" },
    { name: "deal_size", label: _t("Average deal size"), unit: "money" },
    { name: "cycle_days", label: _t("Sales cycle"), unit: "days", lowerIsBetter: true },
    { name: "coverage", label: _t("Pipeline coverage"), unit: "x" },
    {
        name: "activity_to_close",
        label: _t("Activities per won deal"),
        unit: "",
        lowerIsBetter: true,
    },
];

const CHART_COLORS = [
    "#017e84",
    "#714b67",
    "#e6a117",
    "#3c8dbc",
    "#d9534f",
    "#5cb85c",
    "#8e7cc3",
    "#999999",
];

export class PipelineDashboard extends Component {
    static template = "crm_pipeline_optimizer.PipelineDashboard";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.state = useState({
            period: "month",
            teamId: 0,
            tab: "overview",
            data: null,
            forecast: null,
            flow: null,
            exitMissing: null,
        });
        this.canvases = {
            stage: useRef("stageChart"),
            source: useRef("sourceChart"),
            lost: useRef("lostChart"),
            activities: useRef("activitiesChart"),
            win: useRef("winChart"),
        };
        this.charts = [];
        this.isRtl = localization.direction === "rtl";
        onWillStart(async () => {
            await loadBundle("web.chartjs_lib");
            await this.load();
        });
        onMounted(() => this.renderCharts());
        onPatched(() => this.renderCharts());
        onWillUnmount(() => this.destroyCharts());
    }

    async load() {
        const filters = { period: this.state.period, team_id: this.state.teamId || null };
        const call = (method) => this.orm.call("crm.pipeline.dashboard", method, [], filters);
        const [data, forecast, flow] = await Promise.all([
            call("get_dashboard_data"),
            this.state.tab === "forecast" ? call("get_forecast_data") : null,
            this.state.tab === "flow" ? call("get_stage_flow_data") : null,
        ]);
        this.state.data = data;
        this.state.forecast = forecast;
        this.state.flow = flow;
        // Read on the deals themselves, slower on a large database: drawn when it comes.
        this.state.exitMissing = null;
        call("get_exit_criteria_data").then((rows) => {
            this.state.exitMissing = rows;
        });
    }

    async showTab(tab) {
        this.state.tab = tab;
        await this.load();
    }

    /** Each forecast period's rows: label, formatted value, and the deals behind it. */
    forecastRows(period) {
        const money = (value) => this.formatValue(value, "money");
        const rows = [
            {
                name: "won",
                label: _t("Won so far"),
                value: money(period.won.amount),
                domain: period.index === 0 ? period.won.domain : null,
            },
            {
                name: "open",
                label: _t("Open, expected to close"),
                value: `${money(period.open.amount)} (${period.open.count})`,
                domain: period.open.domain,
            },
            {
                name: "weighted_probability",
                label: _t("Weighted by probability"),
                value: money(period.weighted_probability),
            },
            {
                name: "weighted_likelihood",
                label: _t("Weighted by score likelihood"),
                value: money(period.weighted_likelihood),
            },
            ...period.categories.map((category) => ({
                name: `category_${category.name}`,
                label: category.label,
                value: `${money(category.amount)} (${category.count})`,
                domain: category.domain,
                indent: true,
            })),
            { name: "target", label: _t("Target"), value: money(period.target) },
            { name: "gap", label: _t("Gap to target"), value: money(period.gap) },
            {
                name: "coverage",
                label: _t("Gap covered by commit / by weighted"),
                value: `${this.formatValue(period.commit_coverage, "x")} / ${this.formatValue(
                    period.weighted_coverage,
                    "x"
                )}`,
            },
        ];
        return rows;
    }

    formatDays(value) {
        return value === null || value === undefined
            ? "—"
            : formatFloat(value, { digits: [16, 1] });
    }

    formatRate(value) {
        return value === null || value === undefined
            ? "—"
            : formatFloat(value, { digits: [16, 3] });
    }

    async onPeriodChange(ev) {
        this.state.period = ev.target.value;
        await this.load();
    }

    async onTeamChange(ev) {
        this.state.teamId = parseInt(ev.target.value) || 0;
        await this.load();
    }

    get scopeLabel() {
        return {
            own: _t("My pipeline"),
            team: _t("My teams"),
            company: _t("Company"),
        }[this.state.data.scope];
    }

    formatValue(value, unit) {
        if (value === null || value === undefined) {
            return "—";
        }
        if (unit === "money") {
            return formatMonetary(value, {
                currencyId: this.state.data.currency_id,
                digits: [16, 0],
            });
        }
        const number = formatFloat(value, { digits: [16, unit === "x" ? 2 : 1] });
        return unit === "%"
            ? `${number} %`
            : unit === "x"
            ? `${number}×`
            : unit === "days"
            ? _t("%s days", number)
            : number;
    }

    get kpiCards() {
        const kpis = this.state.data.kpis;
        return KPI_DEFINITIONS.map((definition) => {
            const kpi = kpis[definition.name];
            const band = kpi.band;
            let health = "";
            if (band && kpi.value !== null) {
                health = kpi.value < band[0] ? "low" : kpi.value > band[1] ? "high" : "healthy";
            }
            let trend = "flat";
            if (kpi.value !== null && kpi.previous !== null && kpi.value !== kpi.previous) {
                trend = kpi.value > kpi.previous ? "up" : "down";
            }
            const better =
                trend === "flat" ? null : (trend === "up") !== Boolean(definition.lowerIsBetter);
            return {
                ...definition,
                value: this.formatValue(kpi.value, definition.unit),
                previous: this.formatValue(kpi.previous, definition.unit),
                band: band && this.formatBand(band, definition.unit),
                health,
                trend,
                better,
                domain: kpi.domain,
            };
        });
    }

    formatBand(band, unit) {
        return `${this.formatValue(band[0], unit)} – ${this.formatValue(band[1], unit)}`;
    }

    get summary() {
        const kpis = this.state.data.kpis;
        return [
            {
                name: "won_count",
                label: _t("Won"),
                value: kpis.won_count.value,
                domain: kpis.won_count.domain,
            },
            {
                name: "lost_count",
                label: _t("Lost"),
                value: kpis.lost_count.value,
                domain: kpis.lost_count.domain,
            },
            {
                name: "open_count",
                label: _t("Open opportunities"),
                value: kpis.open_count.value,
                domain: kpis.open_count.domain,
            },
            {
                name: "created_count",
                label: _t("New leads"),
                value: kpis.created_count.value,
                domain: kpis.created_count.domain,
            },
        ];
    }

    /** The stages that have exit checks: how many of their open deals miss one. */
    get exitCriteria() {
        const missing = Object.fromEntries(
            (this.state.exitMissing || []).map((row) => [row.stage_id, row])
        );
        return this.state.data.charts.pipeline_by_stage
            .filter((row) => missing[row.stage_id])
            .map((row) => ({
                ...row,
                missing_count: missing[row.stage_id].missing_count,
                missing_domain: missing[row.stage_id].domain,
                share: this.formatValue(
                    row.count ? (100 * missing[row.stage_id].missing_count) / row.count : 0,
                    "%"
                ),
            }));
    }

    openRecords(domain, name) {
        this.action.doAction({
            type: "ir.actions.act_window",
            name,
            res_model: "crm.lead",
            domain,
            views: [
                [false, "list"],
                [false, "kanban"],
                [false, "form"],
            ],
            target: "current",
        });
    }

    printReport() {
        const teams = this.state.data.teams.map((team) => team.id);
        const ids = this.state.teamId ? [this.state.teamId] : teams;
        this.action.doAction("crm_pipeline_optimizer.action_report_pipeline_health", {
            additionalContext: { active_ids: ids, active_model: "crm.team" },
        });
    }

    destroyCharts() {
        for (const chart of this.charts) {
            chart.destroy();
        }
        this.charts = [];
    }

    makeChart(ref, config, onClickDomains) {
        if (!ref.el) {
            return;
        }
        config.options = {
            maintainAspectRatio: false,
            animation: false,
            locale: localization.code?.replace("_", "-"),
            plugins: { legend: { rtl: this.isRtl, position: "bottom" } },
            ...config.options,
        };
        if (onClickDomains) {
            config.options.onClick = (_event, elements) => {
                if (elements.length) {
                    const point = onClickDomains[elements[0].index];
                    this.openRecords(point.domain, point.label);
                }
            };
        }
        if (this.isRtl && config.options.scales) {
            // Right to left: the horizontal axis runs from the right, the vertical one
            // stands on the right.
            config.options.scales.x = { ...config.options.scales.x, reverse: true };
            config.options.scales.y = { ...config.options.scales.y, position: "right" };
        }
        this.charts.push(new Chart(ref.el, config));
    }

    renderCharts() {
        this.destroyCharts();
        const charts = this.state.data.charts;
        const stages = charts.pipeline_by_stage;
        this.makeChart(
            this.canvases.stage,
            {
                type: "bar",
                data: {
                    labels: stages.map((row) => row.label),
                    datasets: [
                        {
                            label: _t("Expected revenue"),
                            data: stages.map((row) => row.amount),
                            backgroundColor: CHART_COLORS[0],
                        },
                    ],
                },
                options: { scales: { x: {}, y: { beginAtZero: true } } },
            },
            stages
        );
        const months = [...new Set(charts.leads_by_source.map((row) => row.month))].sort();
        const sources = [...new Set(charts.leads_by_source.map((row) => row.label))];
        this.makeChart(this.canvases.source, {
            type: "bar",
            data: {
                labels: months.map((month) => month.slice(0, 7)),
                datasets: sources.map((source, index) => ({
                    label: source,
                    backgroundColor: CHART_COLORS[index % CHART_COLORS.length],
                    data: months.map(
                        (month) =>
                            charts.leads_by_source.find(
                                (row) => row.month === month && row.label === source
                            )?.count || 0
                    ),
                })),
            },
            options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
        });
        const lost = charts.lost_by_reason;
        this.makeChart(
            this.canvases.lost,
            {
                type: "doughnut",
                data: {
                    labels: lost.map((row) => row.label),
                    datasets: [
                        { data: lost.map((row) => row.count), backgroundColor: CHART_COLORS },
                    ],
                },
            },
            lost
        );
        const activities = charts.activities_by_salesperson;
        this.makeChart(this.canvases.activities, {
            type: "bar",
            data: {
                labels: activities.map((row) => row.label),
                datasets: [
                    {
                        label: _t("Planned"),
                        data: activities.map((row) => row.planned),
                        backgroundColor: CHART_COLORS[2],
                    },
                    {
                        label: _t("Done"),
                        data: activities.map((row) => row.done),
                        backgroundColor: CHART_COLORS[5],
                    },
                ],
            },
            options: { indexAxis: "y", scales: { x: { beginAtZero: true }, y: {} } },
        });
        const win = charts.time_to_win;
        this.makeChart(this.canvases.win, {
            type: "line",
            data: {
                labels: win.map((row) => row.month.slice(0, 7)),
                datasets: [
                    {
                        label: _t("Days to win"),
                        data: win.map((row) => row.days),
                        borderColor: CHART_COLORS[1],
                        tension: 0.2,
                    },
                ],
            },
            options: { scales: { x: {}, y: { beginAtZero: true } } },
        });
    }
}

registry.category("actions").add("crm_pipeline_optimizer.pipeline_dashboard", PipelineDashboard);
