"""Runs the benchmarks on a database filled by generate.py and prints one figure a line:

    name: value unit

Anchors measured first, on the same database in the same run, so that every feature's
figure can be read against them: Odoo CE's predictive lead scoring cron, crm's
`duplicate_lead_ids` for one kanban page, and one kanban page as the web client loads it.

    python tools/bench/run.py ODOO_CONF DATABASE [--repeat 3]
"""

# pylint: disable=print-used
import argparse
import os
import statistics
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

import psutil
from lxml import etree

import odoo
from odoo import SUPERUSER_ID, api, fields
from odoo.modules.registry import Registry

PAGE = 80
OPPORTUNITY_PAGE_DOMAIN = [("type", "=", "opportunity")]
KANBAN_ORDER = "priority desc, id desc"  # crm.lead's _order, the kanban's default


def figure(name, value, unit):
    if isinstance(value, float):
        value = f"{value:.4g}" if value < 100 else f"{value:.1f}"
    print(f"{name}: {value} {unit}", flush=True)


class Measure:
    """Seconds (median of `repeat` runs), queries (of the last run) and peak resident memory
    above the starting point (sampled every 5 ms)."""

    def __init__(self, env, repeat):
        self.env = env
        self.repeat = repeat

    @contextmanager
    def _peak_memory(self, result):
        process = psutil.Process(os.getpid())
        baseline = process.memory_info().rss
        peak = [baseline]
        stop = threading.Event()

        def sample():
            while not stop.wait(0.005):
                peak[0] = max(peak[0], process.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join()
            peak[0] = max(peak[0], process.memory_info().rss)
            result["peak_mb"] = (peak[0] - baseline) / 2**20

    def run(self, func, repeat=None, cold=True):
        timings, result = [], {}
        for _ in range(repeat or self.repeat):
            if cold:
                self.env.invalidate_all()
            queries = self.env.cr.sql_log_count
            with self._peak_memory(result):
                start = time.perf_counter()
                func()
                self.env.flush_all()
                timings.append(time.perf_counter() - start)
            result["queries"] = self.env.cr.sql_log_count - queries
        result["seconds"] = statistics.median(timings)
        return result


def kanban_specification(env, arch):
    """The `web_search_read` specification the web client sends for a kanban arch."""
    Lead = env["crm.lead"]
    spec = {}
    for node in etree.fromstring(arch).iter("field"):
        name = node.get("name")
        field = Lead._fields.get(name)
        if not field or name in spec:
            continue
        if field.type == "many2one" or field.type in ("one2many", "many2many"):
            spec[name] = {"fields": {"display_name": {}}}
        else:
            spec[name] = {}
    return spec


def bench_dataset(env):
    Lead = env["crm.lead"].with_context(active_test=False)
    figure("machine_cores", os.cpu_count(), "cores")
    figure("dataset_leads", Lead.search_count([]), "leads")
    figure(
        "dataset_open_opportunities",
        Lead.search_count(
            [("type", "=", "opportunity"), ("active", "=", True), ("probability", "<", 100)]
        ),
        "opportunities",
    )
    figure("dataset_won", Lead.search_count([("probability", "=", 100)]), "leads")
    figure(
        "dataset_lost",
        Lead.search_count([("active", "=", False), ("probability", "=", 0)]),
        "leads",
    )
    env.cr.execute("SELECT count(*) FROM mail_message WHERE model = 'crm.lead'")
    figure("dataset_messages", env.cr.fetchone()[0], "messages")


def bench_anchors(env, measure):
    Lead = env["crm.lead"]
    # Let Odoo's predictive lead scoring learn from the whole history, as a long-running
    # database would.
    start = fields.Date.to_string(fields.Date.today() - timedelta(days=4 * 365))
    env["ir.config_parameter"].set_param("crm.pls_start_date", start)
    pls = measure.run(Lead._cron_update_automated_probabilities, repeat=1)
    figure("anchor_pls_cron_seconds", pls["seconds"], "s")
    figure("anchor_pls_cron_peak_memory", pls["peak_mb"], "MB")
    figure("anchor_pls_cron_queries", pls["queries"], "queries")

    page = Lead.search(OPPORTUNITY_PAGE_DOMAIN, limit=PAGE, order=KANBAN_ORDER)
    duplicates = measure.run(lambda: page.browse(page.ids).mapped("duplicate_lead_ids"))
    figure("anchor_crm_duplicates_page_seconds", duplicates["seconds"], "s")
    figure("anchor_crm_duplicates_page_queries", duplicates["queries"], "queries")

    view = env.ref("crm.crm_case_kanban_view_leads")
    # Both archs unprocessed (no group filtering): crm's own, and crm's with every
    # inheriting view of the installed modules applied.
    crm_only = kanban_specification(env, view.arch_db)
    with_module = kanban_specification(env, etree.tostring(view._get_combined_arch()))
    for label, spec in (("crm", crm_only), ("module", with_module)):
        kanban = measure.run(
            lambda spec=spec: Lead.web_search_read(
                OPPORTUNITY_PAGE_DOMAIN, spec, limit=PAGE, order=KANBAN_ORDER
            )
        )
        figure(f"anchor_kanban_page_{label}_seconds", kanban["seconds"], "s")
        figure(f"anchor_kanban_page_{label}_queries", kanban["queries"], "queries")
        figure(f"anchor_kanban_page_{label}_fields", len(spec), "fields")


SECTIONS = [bench_anchors]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("database")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    odoo.tools.config.parse_config(["-c", args.config, "-d", args.database, "--log-level=warn"])
    with Registry(args.database).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        bench_dataset(env)
        measure = Measure(env, args.repeat)
        for section in SECTIONS:
            section(env, measure)


if __name__ == "__main__":
    main()
