"""Runs the benchmarks on a database filled by generate.py and prints one figure a line:

    name: value unit

Anchors measured first, on the same database in the same run, so that every feature's
figure can be read against them: Odoo CE's predictive lead scoring cron, crm's
`duplicate_lead_ids` for one kanban page, and one kanban page as the web client loads it.

    python tools/bench/run.py ODOO_CONF DATABASE [--repeat 3]
"""

# pylint: disable=print-used
import argparse
import csv
import io
import itertools
import os
import statistics
import subprocess
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

import psutil
from lxml import etree

import odoo
from odoo import SUPERUSER_ID, Command, api, fields
from odoo.modules.registry import Registry
from odoo.tools import SQL

PAGE = 80
OPPORTUNITY_PAGE_DOMAIN = [("type", "=", "opportunity")]
KANBAN_ORDER = "priority desc, id desc"  # crm.lead's _order, the kanban's default


RESULTS = {}


def figure(name, value, unit):
    RESULTS[name] = value
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
            # Every connection of the process counts (the nightly rescoring uses several).
            queries = odoo.sql_db.sql_counter
            with self._peak_memory(result):
                start = time.perf_counter()
                func()
                self.env.flush_all()
                timings.append(time.perf_counter() - start)
            result["queries"] = odoo.sql_db.sql_counter - queries
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


def vacuum(env, table):
    """Commit, then VACUUM ANALYZE outside any transaction, as autovacuum would have."""
    env.cr.commit()
    subprocess.run(["psql", "-qd", env.cr.dbname, "-c", f"VACUUM ANALYZE {table}"], check=True)


def fold_figures(env):
    """The nightly fold of the dashboard's figures, as the cron would have run it since the
    dataset's last change, and a vacuum of their table."""
    env.cr.execute("SELECT count(*) FROM crm_pipeline_figure")
    figure("figures_rows_before_nightly_fold", env.cr.fetchone()[0], "rows")
    env["crm.pipeline.figure"]._cron_fold_figures()
    vacuum(env, "crm_pipeline_figure")


def report_rescoring(prefix, result, scored, changed):
    figure(f"{prefix}_changed", changed, "leads")
    figure(f"{prefix}_seconds", result["seconds"], "s")
    figure(f"{prefix}_leads_per_second", scored / result["seconds"], "leads/s")
    figure(f"{prefix}_peak_memory", result["peak_mb"], "MB")
    figure(f"{prefix}_queries", result["queries"], "queries")
    speedup = RESULTS["anchor_pls_cron_seconds"] / result["seconds"]
    figure(f"{prefix}_speedup_vs_pls_cron", speedup, "x")


def bench_scoring(env, measure):
    """Full rescoring: relearn the factors from the whole closed history, then score every
    open lead (criteria + learned part + stars), set-based.
    - first run: scores were reset, so every open lead is written (the run after install);
    - nightly run: nothing changed since, so nothing is written (crm's cron rewrites every
      open lead each night, changed or not)."""
    Lead = env["crm.lead"]
    env.cr.execute("UPDATE crm_lead SET score = NULL, score_details = NULL")
    vacuum(env, "crm_lead")

    def rescore_all():
        # As the nightly cron runs it: batches committed, shared between connections.
        RESULTS["_scored"] = Lead._update_all_scores(commit=True)

    first = measure.run(rescore_all, repeat=1)
    scored, changed = RESULTS["_scored"]
    figure("scoring_open_leads", scored, "leads")
    report_rescoring("scoring_first_run", first, scored, changed)
    vacuum(env, "crm_lead")
    nightly = measure.run(rescore_all, repeat=1)
    report_rescoring("scoring_nightly", nightly, scored, RESULTS["_scored"][1])

    # A working day: 0.5 % of the open opportunities lost since the last night. The learned
    # part moves for some leads, and those are written.
    env.cr.execute(
        """SELECT id, probability FROM crm_lead
            WHERE active AND COALESCE(probability, 0) < 100 AND type = 'opportunity'
         ORDER BY id DESC LIMIT (SELECT COUNT(*) / 200 FROM crm_lead
                                  WHERE active AND type = 'opportunity')"""
    )
    closed = env.cr.fetchall()
    env.cr.execute(
        "UPDATE crm_lead SET active = FALSE, probability = 0 WHERE id IN %s",
        [tuple(id_ for id_, _probability in closed)],
    )
    env.cr.commit()
    figure("scoring_after_a_day_deals_lost", len(closed), "leads")
    day = measure.run(rescore_all, repeat=1)
    report_rescoring("scoring_after_a_day", day, RESULTS["_scored"][0], RESULTS["_scored"][1])
    env.cr.execute(
        """UPDATE crm_lead l SET active = TRUE, probability = v.probability
             FROM unnest(%s::int[], %s::float8[]) AS v(id, probability) WHERE l.id = v.id""",
        [[id_ for id_, _p in closed], [probability for _id, probability in closed]],
    )
    env.cr.commit()
    rescore_all()

    lead = Lead.search([("type", "=", "opportunity")], limit=1, order="id desc")
    Lead._score_criteria()
    flags = iter([True, False] * 10)
    write = measure.run(lambda: lead.write({"is_budget_confirmed": next(flags)}), cold=False)
    figure("scoring_one_lead_write_seconds", write["seconds"], "s")
    figure("scoring_one_lead_write_queries", write["queries"], "queries")


def bench_stale(env, measure):
    """Stale deals on all open opportunities, as the daily crons see them:
    - selection: the stale and the overdue queries over the whole database;
    - follow-ups for 10,000 stale opportunities, in the cron's batches, then a second run
      (0 expected); escalation of one batch. Rolled back at the end: the dataset stays."""
    Lead = env["crm.lead"]
    now = fields.Datetime.now()
    vacuum(env, "crm_lead")
    vacuum(env, "mail_activity")

    def count(query):
        env.cr.execute(odoo.tools.SQL("SELECT COUNT(*) FROM (%s) q", query))
        RESULTS["_count"] = env.cr.fetchone()[0]

    stale = measure.run(lambda: count(Lead._stale_query(now)))
    figure("stale_selection_opportunities", RESULTS["_count"], "opportunities")
    figure("stale_selection_seconds", stale["seconds"], "s")
    figure("stale_selection_queries", stale["queries"], "queries")
    overdue = measure.run(lambda: count(Lead._overdue_query(now)))
    figure("overdue_selection_opportunities", RESULTS["_count"], "opportunities")
    figure("overdue_selection_seconds", overdue["seconds"], "s")
    figure("overdue_selection_queries", overdue["queries"], "queries")

    # Keep 10,000 stale opportunities to follow up: the others count as handled already.
    env.cr.execute(
        odoo.tools.SQL(
            """UPDATE crm_lead SET date_stale = %s
                WHERE id IN (%s) AND id NOT IN (SELECT id FROM (%s) s ORDER BY id LIMIT 10000)""",
            now,
            Lead._stale_query(now),
            Lead._stale_query(now),
        )
    )
    activities_before = env["mail.activity"].search_count([])

    def follow_up_all():
        while len(Lead._cron_stale_followups()) == 1000:
            pass

    first = measure.run(follow_up_all, repeat=1)
    created = env["mail.activity"].search_count([]) - activities_before
    figure("stale_followups_created", created, "activities")
    figure("stale_followups_seconds", first["seconds"], "s")
    figure("stale_followups_per_second", created / first["seconds"], "activities/s")
    figure("stale_followups_queries", first["queries"], "queries")
    figure("stale_followups_peak_memory", first["peak_mb"], "MB")
    second = measure.run(follow_up_all, repeat=1)
    figure(
        "stale_followups_second_run_created",
        env["mail.activity"].search_count([]) - activities_before - created,
        "activities",
    )
    figure("stale_followups_second_run_seconds", second["seconds"], "s")
    escalation = measure.run(Lead._cron_escalate_overdue, repeat=1)
    figure("escalation_batch_seconds", escalation["seconds"], "s")
    figure("escalation_batch_queries", escalation["queries"], "queries")
    env.cr.rollback()


def bench_dashboard(env, measure):
    """The dashboard's data for a sales administrator (the whole company: the largest
    scope) and for one salesperson, per period, warm caches as a user reopening it."""
    admin = env.ref("base.user_admin")
    Dashboard = env(user=admin)["crm.pipeline.dashboard"]
    for period in ("month", "quarter", "year"):
        Dashboard.get_dashboard_data(period)
        result = measure.run(lambda period=period: Dashboard.get_dashboard_data(period), cold=False)
        figure(f"dashboard_manager_{period}_seconds", result["seconds"], "s")
        figure(f"dashboard_manager_{period}_queries", result["queries"], "queries")
    env.cr.execute(
        "SELECT user_id FROM crm_lead WHERE user_id IS NOT NULL GROUP BY user_id "
        "ORDER BY COUNT(*) DESC LIMIT 1"
    )
    salesperson = env["res.users"].browse(env.cr.fetchone()[0])
    Dashboard = env(user=salesperson)["crm.pipeline.dashboard"]
    Dashboard.get_dashboard_data("quarter")
    result = measure.run(lambda: Dashboard.get_dashboard_data("quarter"), cold=False)
    figure("dashboard_salesperson_quarter_seconds", result["seconds"], "s")
    figure("dashboard_salesperson_quarter_queries", result["queries"], "queries")
    # The dataset's team leaders are sales administrators (the company view above): the
    # leader of the largest team, made an all-documents salesperson, sees their team.
    env.cr.execute(
        "SELECT team.user_id, COUNT(*) FROM crm_lead lead "
        "JOIN crm_team team ON team.id = lead.team_id GROUP BY team.id ORDER BY 2 DESC LIMIT 1"
    )
    leader_id, team_leads = env.cr.fetchone()
    figure("dashboard_team_leader_team_leads", team_leads, "leads")
    leader = env["res.users"].browse(leader_id)
    leader.groups_id = [Command.unlink(env.ref("sales_team.group_sale_manager").id)]
    Dashboard = env(user=leader)["crm.pipeline.dashboard"]
    Dashboard.get_dashboard_data("month")
    result = measure.run(lambda: Dashboard.get_dashboard_data("month"), cold=False)
    figure("dashboard_team_leader_month_seconds", result["seconds"], "s")
    figure("dashboard_team_leader_month_queries", result["queries"], "queries")
    # A reader 3:30 ahead of UTC: their months start in the UTC month before, and the
    # hours between are read from the leads.
    leader.tz = "Asia/Tehran"
    Dashboard.get_dashboard_data("month")
    result = measure.run(lambda: Dashboard.get_dashboard_data("month"), cold=False)
    figure("dashboard_team_leader_month_tehran_seconds", result["seconds"], "s")
    figure("dashboard_team_leader_month_tehran_queries", result["queries"], "queries")
    # The same dashboard read from the leads, as for a reader whose record rules the kept
    # figures cannot apply.
    with patch.object(
        type(Dashboard.env["crm.pipeline.figure"]), "_reader_rules", lambda self: None
    ):
        Dashboard.get_dashboard_data("month")
        result = measure.run(lambda: Dashboard.get_dashboard_data("month"), cold=False)
    figure("dashboard_team_leader_month_from_leads_seconds", result["seconds"], "s")
    figure("dashboard_team_leader_month_from_leads_queries", result["queries"], "queries")
    env.cr.rollback()


def bench_figures(env, measure):
    """The dashboard's kept figures: their size, what keeping them costs a mass change of
    leads (triggers on and off), folding the day's deltas, counting them again."""
    env.cr.execute("SELECT count(*) FROM crm_pipeline_figure")
    figure("figures_rows", env.cr.fetchone()[0], "rows")
    env.cr.execute(
        "SELECT id FROM crm_lead WHERE active AND type = 'opportunity' ORDER BY id LIMIT 10000"
    )
    ids = [row[0] for row in env.cr.fetchall()]
    stages = env["crm.stage"].search([("is_won", "=", False)], limit=2)

    def move_all(stage):
        env["crm.lead"].browse(ids).write({"stage_id": stage.id})

    # Alternated, the first run warming the caches for both: without, with, without, with.
    timings = {"with": [], "without": []}
    for label, trigger_state in (("without", "DISABLE"), ("with", "ENABLE")) * 2:
        env.cr.execute("SAVEPOINT bench_figures")
        env.cr.execute(SQL("ALTER TABLE crm_lead %s TRIGGER USER", SQL(trigger_state)))
        timings[label].append(measure.run(lambda: move_all(stages[1]), repeat=1)["seconds"])
        env.cr.execute("ROLLBACK TO SAVEPOINT bench_figures")
        env.invalidate_all()
    for label, seconds in timings.items():
        figure(f"figures_stage_change_10000_{label}_triggers_seconds", seconds[-1], "s")
    env.cr.execute("SAVEPOINT bench_figures")
    move_all(stages[1])
    env.flush_all()
    env.cr.execute("SELECT count(*) FROM crm_pipeline_figure")
    figure("figures_rows_after_stage_change", env.cr.fetchone()[0], "rows")
    Figure = env["crm.pipeline.figure"]
    result = measure.run(Figure._cron_fold_figures, repeat=1)
    figure("figures_fold_seconds", result["seconds"], "s")
    env.cr.execute("SELECT count(*) FROM crm_pipeline_figure")
    figure("figures_rows_after_fold", env.cr.fetchone()[0], "rows")
    result = measure.run(Figure._rebuild_figures, repeat=1)
    figure("figures_rebuild_seconds", result["seconds"], "s")
    env.cr.execute("ROLLBACK TO SAVEPOINT bench_figures")
    env.invalidate_all()


def pair_quality(env, pairs_sql, same_company):
    """Pairwise precision and recall of the pairs `pairs_sql` (lead_a < lead_b) against the
    generator's identities; with `same_company`, both sides are limited to pairs of leads
    of one company (the only pairs a merge may join)."""
    company_filter = "AND la.company_id = lb.company_id" if same_company else ""
    env.cr.execute(
        f"""
        WITH found AS ({pairs_sql}),
        kept AS (
            SELECT f.lead_a, f.lead_b FROM found f
              JOIN crm_lead la ON la.id = f.lead_a JOIN crm_lead lb ON lb.id = f.lead_b
             WHERE TRUE {company_filter}),
        truth AS (
            SELECT ia.lead_id AS lead_a, ib.lead_id AS lead_b
              FROM bench_lead_identity ia
              JOIN bench_lead_identity ib
                ON ib.identity_id = ia.identity_id AND ib.lead_id > ia.lead_id
              JOIN crm_lead la ON la.id = ia.lead_id JOIN crm_lead lb ON lb.id = ib.lead_id
             WHERE TRUE {company_filter})
        SELECT (SELECT count(*) FROM kept), (SELECT count(*) FROM truth),
               (SELECT count(*) FROM kept JOIN truth USING (lead_a, lead_b))
        """
    )
    found, truth, correct = env.cr.fetchone()
    return (correct / found if found else 0.0), (correct / truth if truth else 0.0), found


CLUSTER_PAIRS_SQL = """
    SELECT ra.lead_id AS lead_a, rb.lead_id AS lead_b
      FROM crm_lead_duplicate_cluster c
      JOIN crm_lead_duplicate_cluster_lead_rel ra ON ra.cluster_id = c.id
      JOIN crm_lead_duplicate_cluster_lead_rel rb
        ON rb.cluster_id = c.id AND rb.lead_id > ra.lead_id
     WHERE c.state = 'open'"""
# crm's "Similar Leads" criteria as a set of pairs: same email domain criterion or same
# sanitized phone when fewer than 21 leads share it, archived leads included, any company.
CRM_PAIRS_SQL = """
    WITH grouped AS (
        SELECT array_agg(id) AS ids FROM crm_lead WHERE email_domain_criterion IS NOT NULL
      GROUP BY email_domain_criterion HAVING count(*) BETWEEN 2 AND 21
        UNION ALL
        SELECT array_agg(id) FROM crm_lead WHERE phone_sanitized IS NOT NULL
      GROUP BY phone_sanitized HAVING count(*) BETWEEN 2 AND 21)
    SELECT DISTINCT a AS lead_a, b AS lead_b
      FROM grouped, unnest(ids) a, unnest(ids) b WHERE a < b"""


def bench_duplicates(env, measure):
    """Duplicate clusters over every lead, their quality against the generator's truth next
    to crm's exact-match criteria, similar leads of one kanban page, a 50-record merge."""
    Cluster = env["crm.lead.duplicate.cluster"]
    Lead = env["crm.lead"].with_context(active_test=False)
    keys = measure.run(Lead._fill_match_keys, repeat=1)
    figure("duplicates_keys_refill_seconds", keys["seconds"], "s")
    clusters = measure.run(Cluster._find_clusters, repeat=1)
    env.cr.execute(
        "SELECT count(*), COALESCE(sum(lead_count), 0) FROM crm_lead_duplicate_cluster "
        "WHERE state = 'open'"
    )
    count, leads_in_clusters = env.cr.fetchone()
    figure("duplicates_clusters_seconds", clusters["seconds"], "s")
    figure("duplicates_clusters_queries", clusters["queries"], "queries")
    figure("duplicates_clusters_peak_memory", clusters["peak_mb"], "MB")
    figure("duplicates_clusters", count, "clusters")
    figure("duplicates_leads_in_clusters", leads_in_clusters, "leads")
    for label, pairs_sql in (("module", CLUSTER_PAIRS_SQL), ("crm", CRM_PAIRS_SQL)):
        for scope, same_company in (("same_company", True), ("any_company", False)):
            precision, recall, found = pair_quality(env, pairs_sql, same_company)
            figure(f"duplicates_{label}_{scope}_pairs", found, "pairs")
            figure(f"duplicates_{label}_{scope}_precision", precision, "")
            figure(f"duplicates_{label}_{scope}_recall", recall, "")

    page = Lead.search(OPPORTUNITY_PAGE_DOMAIN, limit=PAGE, order=KANBAN_ORDER)
    similar = measure.run(lambda: page.browse(page.ids).mapped("similar_lead_count"))
    figure("duplicates_similar_page_seconds", similar["seconds"], "s")
    figure("duplicates_similar_page_queries", similar["queries"], "queries")
    crm = measure.run(lambda: page.browse(page.ids).mapped("duplicate_lead_count"))
    figure("duplicates_crm_similar_page_seconds", crm["seconds"], "s")
    figure("duplicates_crm_similar_page_queries", crm["queries"], "queries")

    for size in (50, 1000):
        bench_merge(env, measure, size)


def bench_merge(env, measure, size):
    """`size` open leads of one company with their history: merged by the module and
    undone, then merged by crm (the same records, as superuser), each rolled back."""
    Lead = env["crm.lead"].with_context(active_test=False)
    company = env["res.company"].search([], limit=1)
    to_merge = Lead.search(
        [("company_id", "=", company.id), ("active", "=", True), ("probability", "<", 100)],
        limit=size,
        order="id",
    )
    env.cr.execute(
        "SELECT count(*) FROM mail_message WHERE model = 'crm.lead' AND res_id IN %s",
        (tuple(to_merge.ids),),
    )
    prefix = f"duplicates_merge_{size}"
    figure(f"{prefix}_messages", env.cr.fetchone()[0], "messages")
    env.cr.execute("SAVEPOINT bench_merge")
    master = to_merge._merge_default_master()
    merge = measure.run(lambda: to_merge._merge_into(master), repeat=1)
    undo = measure.run(lambda: master.action_undo_merge(), repeat=1, cold=False)
    restored = len(to_merge.browse(to_merge.ids).exists())
    env.cr.execute("ROLLBACK TO SAVEPOINT bench_merge")
    env.invalidate_all()
    figure(f"{prefix}_seconds", merge["seconds"], "s")
    figure(f"{prefix}_queries", merge["queries"], "queries")
    figure(f"{prefix}_undo_seconds", undo["seconds"], "s")
    figure(f"{prefix}_undo_queries", undo["queries"], "queries")
    figure(f"{prefix}_undo_restored", restored, "leads")
    env.cr.execute("SAVEPOINT bench_merge")
    crm = measure.run(
        lambda: to_merge.browse(to_merge.ids)._merge_opportunity(max_length=None), repeat=1
    )
    env.cr.execute("ROLLBACK TO SAVEPOINT bench_merge")
    env.invalidate_all()
    figure(f"{prefix}_crm_seconds", crm["seconds"], "s")
    figure(f"{prefix}_crm_queries", crm["queries"], "queries")


IMPORT_ROWS = 10000
IMPORT_MATCHING_SHARE = 0.08
IMPORT_FIELDS = ["name", "email_from", "contact_name", "partner_name", "phone"]


def import_csv(env):
    """A CSV file of IMPORT_ROWS leads, IMPORT_MATCHING_SHARE of them leads of the dataset
    typed again (their email in capitals), the others new customers."""
    matching = int(IMPORT_ROWS * IMPORT_MATCHING_SHARE)
    company = env.company  # the importing user's: rows are compared within it
    env.cr.execute(
        """SELECT name, email_from, contact_name, partner_name, phone FROM crm_lead
            WHERE company_id = %s AND active AND email_from IS NOT NULL
         ORDER BY md5(id::text) LIMIT %s""",
        (company.id, matching),
    )
    rows = [
        [f"Again: {name}", email.upper(), contact, partner, phone or ""]
        for name, email, contact, partner, phone in env.cr.fetchall()
    ]
    rows += [
        [
            f"Imported {n}",
            f"imported.{n}@new-customer-{n}.example.com",
            f"Contact {n}",
            f"New Customer {n}",
            "",
        ]
        for n in range(IMPORT_ROWS - len(rows))
    ]
    data = io.StringIO()
    writer = csv.writer(data)
    writer.writerow(IMPORT_FIELDS)
    writer.writerows(rows)
    return data.getvalue().encode(), matching


def bench_import(env, measure):
    """Odoo's import of 10,000 leads, 8 % of them already in the database, in one
    transaction: as crm does it (no duplicate choice), the same with the kept figures'
    triggers off, and with each of the module's choices; each rolled back."""
    content, matching = import_csv(env)
    figure("import_rows", IMPORT_ROWS, "rows")
    figure("import_rows_matching_existing", matching, "rows")
    Lead = env["crm.lead"].with_context(active_test=False)
    # crm's import once more with the kept figures' triggers off: what they cost an import.
    for mode, triggers in (
        (None, True),
        (None, False),
        ("review", True),
        ("merge", True),
        ("skip", True),
    ):
        label = (mode or "crm") + ("" if triggers else "_without_figure_triggers")
        env.cr.execute("SELECT max(id) FROM crm_lead")
        last_id = env.cr.fetchone()[0]
        env.cr.execute("SAVEPOINT bench_import")
        if not triggers:
            for table in ("crm_lead", "mail_message", "mail_activity"):
                env.cr.execute(SQL("ALTER TABLE %s DISABLE TRIGGER USER", SQL.identifier(table)))
        wizard = env["base_import.import"].create(
            {"res_model": "crm.lead", "file": content, "file_type": "text/csv"}
        )
        options = {"has_headers": True, "quoting": '"', "separator": ",", "encoding": "utf-8"}
        if mode:
            options["crm_import_duplicates"] = mode
        result = {}

        def run(wizard=wizard, options=options, result=result):
            result.update(wizard.execute_import(IMPORT_FIELDS, IMPORT_FIELDS, options))

        timing = measure.run(run, repeat=1)
        created = Lead.search_count([("id", ">", last_id)])
        env.cr.execute(
            """SELECT count(*) FROM crm_lead new
                WHERE new.id > %s AND EXISTS (
                      SELECT FROM crm_lead old WHERE old.id <= %s
                         AND old.email_match_key = new.email_match_key)""",
            (last_id, last_id),
        )
        left = env.cr.fetchone()[0]
        env.cr.execute("ROLLBACK TO SAVEPOINT bench_import")
        env.invalidate_all()
        figure(f"import_{label}_seconds", timing["seconds"], "s")
        figure(f"import_{label}_queries", timing["queries"], "queries")
        figure(f"import_{label}_errors", len(result.get("messages") or []), "messages")
        figure(f"import_{label}_leads_created", created, "leads")
        figure(f"import_{label}_duplicates_left", left, "leads")


def bench_exit_criteria(env, measure):
    """The stage gate: moving 10,000 deals forward in one write with the seeded exit checks
    on every open stage, and with no checks; the checklist of one kanban page."""
    stages = env["crm.stage"].search([("is_won", "=", False)])
    target = stages[-1]
    env.cr.execute(
        SQL(
            """SELECT id FROM crm_lead
                WHERE active AND type = 'opportunity' AND stage_id IN %s
             ORDER BY id LIMIT 10000""",
            tuple(stages[:-1].ids),
        )
    )
    ids = [row[0] for row in env.cr.fetchall()]
    figure("exit_checks", env["crm.stage.exit.check"].search_count([]), "checks")
    figure("exit_move_deals", len(ids), "deals")
    Lead = env["crm.lead"]
    checks = env["crm.stage.exit.check"].search([])

    def move_all():
        Lead.browse(ids).write({"stage_id": target.id})

    def passages():
        Lead.browse(ids)._exit_gate_passages(target.id)

    # Alternated, the first run warming the caches for both.
    results = {}
    for label in ("without", "with") * 2:
        env.cr.execute("SAVEPOINT bench_exit")
        if label == "without":
            checks.write({"active": False})
        results[label] = measure.run(move_all, repeat=1)
        results[f"{label}_gate"] = measure.run(passages, repeat=1)
        env.cr.execute("ROLLBACK TO SAVEPOINT bench_exit")
        env.registry.clear_cache()
        env.invalidate_all()
    for label in ("without", "with"):
        figure(f"exit_move_10000_{label}_checks_seconds", results[label]["seconds"], "s")
        figure(f"exit_move_10000_{label}_checks_queries", results[label]["queries"], "queries")
    figure("exit_gate_10000_checks_seconds", results["with_gate"]["seconds"], "s")
    figure("exit_gate_10000_checks_queries", results["with_gate"]["queries"], "queries")

    page = Lead.search(OPPORTUNITY_PAGE_DOMAIN, limit=PAGE, order=KANBAN_ORDER)
    # Cold: the page's stages and companies read, then the checks' one query.
    checklist = measure.run(lambda: page.browse(page.ids).mapped("exit_check_met_count"))
    figure("exit_checklist_page_seconds", checklist["seconds"], "s")
    figure("exit_checklist_page_queries", checklist["queries"], "queries")
    # The dashboard's count of open deals missing criteria per stage, read on the deals.
    Dashboard = env(user=env.ref("base.user_admin"))["crm.pipeline.dashboard"]
    Dashboard.get_exit_criteria_data()
    missing = measure.run(Dashboard.get_exit_criteria_data, cold=False)
    figure("exit_missing_per_stage_manager_seconds", missing["seconds"], "s")
    figure("exit_missing_per_stage_manager_queries", missing["queries"], "queries")
    figure(
        "exit_missing_deals",
        sum(row["missing_count"] for row in Dashboard.get_exit_criteria_data()),
        "deals",
    )


def bench_forecast(env, measure):
    """Forecast, stage flow and the score's calibration: the nightly calibration and the
    stage history rebuilt as at install; the forecast and stage flow tabs for a sales
    administrator, a team leader and a salesperson, warm caches."""
    Calibration = env["crm.lead.score.calibration"]
    result = measure.run(Calibration._cron_calibrate, repeat=1)
    figure("calibration_cron_seconds", result["seconds"], "s")
    figure("calibration_cron_queries", result["queries"], "queries")
    env.cr.execute("SELECT count(*) FROM crm_lead_score_snapshot")
    figure("calibration_snapshot_rows", env.cr.fetchone()[0], "rows")
    company = env.company
    figure("calibration_deals", company.score_calibration_deals, "deals")
    figure("calibration_deals_read_a_month_before", company.score_calibration_month_before, "deals")
    for name in ("score_brier", "score_auc", "crm_probability_brier", "crm_probability_auc"):
        figure(f"calibration_{name}", company[name] or "not measurable", "")
    for row in Calibration.search([("company_id", "=", company.id)]):
        figure(
            f"calibration_bucket_{row.bucket}",
            f"{row.closed_count} closed, {row.win_rate:.1f} % won",
            "",
        )

    admin = env.ref("base.user_admin")
    env.cr.execute(
        "SELECT team.user_id FROM crm_lead lead "
        "JOIN crm_team team ON team.id = lead.team_id GROUP BY team.id ORDER BY COUNT(*) DESC "
        "LIMIT 1"
    )
    leader = env["res.users"].browse(env.cr.fetchone()[0])
    leader.groups_id = [Command.unlink(env.ref("sales_team.group_sale_manager").id)]
    env.cr.execute(
        "SELECT user_id FROM crm_lead WHERE user_id IS NOT NULL GROUP BY user_id "
        "ORDER BY COUNT(*) DESC LIMIT 1"
    )
    salesperson = env["res.users"].browse(env.cr.fetchone()[0])
    for role, user in (("manager", admin), ("team_leader", leader), ("salesperson", salesperson)):
        Dashboard = env(user=user)["crm.pipeline.dashboard"]
        # A month read early in the month holds few stage visits: the quarter too.
        for (method, label), period in itertools.product(
            (("get_forecast_data", "forecast"), ("get_stage_flow_data", "stage_flow")),
            ("month", "quarter"),
        ):
            call = getattr(Dashboard, method)
            call(period)
            result = measure.run(lambda call=call, period=period: call(period), cold=False)
            figure(f"{label}_{role}_{period}_seconds", result["seconds"], "s")
            figure(f"{label}_{role}_{period}_queries", result["queries"], "queries")
    env.cr.rollback()
    # The stage visits rebuilt from crm's tracking, as the install does (the dataset's
    # were, when it was generated), their kept figures with them.
    result = measure.run(env["crm.lead.stage.visit"]._rebuild_stage_visits, repeat=1)
    figure("stage_visits_rebuild_seconds", result["seconds"], "s")
    env.cr.execute("SELECT count(*) FROM crm_lead_stage_visit")
    figure("stage_visits_rows", env.cr.fetchone()[0], "rows")
    env.cr.rollback()


SECTIONS = [
    bench_anchors,
    bench_scoring,
    bench_stale,
    bench_dashboard,
    bench_forecast,
    bench_figures,
    bench_exit_criteria,
    bench_duplicates,
    bench_import,
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("database")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only",
        action="append",
        choices=[section.__name__.removeprefix("bench_") for section in SECTIONS],
        help="run this section only; repeat to run several, e.g. --only anchors --only "
        "scoring (the sections after the anchors read the anchors' figures)",
    )
    args = parser.parse_args()
    odoo.tools.config.parse_config(["-c", args.config, "-d", args.database, "--log-level=warn"])
    with Registry(args.database).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        bench_dataset(env)
        fold_figures(env)
        measure = Measure(env, args.repeat)
        for section in SECTIONS:
            if not args.only or section.__name__.removeprefix("bench_") in args.only:
                section(env, measure)


if __name__ == "__main__":
    main()
