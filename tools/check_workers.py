"""Odoo as production runs it — `--workers 4 --max-cron-threads 2`, several processes —
serving the pipeline kanban and the dashboard to parallel users and running the module's
cron jobs in its cron workers.

    python tools/check_workers.py ODOO_BIN ODOO_CONF DATABASE

Uses a throwaway database that has the module and crm's demo data (admin / admin). Starts
the server on a free port of this machine, talks JSON-RPC to it, stops it. Prints one line
per check and ends with "N passed, N failed".
"""

import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
from odoo_rpc import Client, free_port, kanban_page, start_server, stop_server, wait_for_server

STALE_LEADS = 5
CRON_WAIT = 150  # seconds: cron workers poll the jobs every minute

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok' if ok else 'FAILED'}: {name}{' — ' + str(detail) if detail and not ok else ''}")


def make_stale_leads(database):
    """Opportunities quiet for 30 days, straight in the database (the ORM would stamp
    them as just updated); every other lead marked as already handled."""
    with psycopg2.connect(dbname=database) as connection, connection.cursor() as cr:
        cr.execute(
            """UPDATE crm_lead SET date_stale = now();
               INSERT INTO crm_lead (name, type, active, user_id, company_id, stage_id,
                                     date_last_stage_update, create_date, write_date,
                                     create_uid, write_uid, probability, priority)
               SELECT 'Workers ' || n, 'opportunity', TRUE, 2, 1,
                      (SELECT id FROM crm_stage WHERE NOT is_won ORDER BY sequence LIMIT 1),
                      now() - interval '30 days', now() - interval '30 days',
                      now() - interval '30 days', 2, 2, 10, '0'
                 FROM generate_series(1, %s) n
            RETURNING id""",
            (STALE_LEADS,),
        )
        return [row[0] for row in cr.fetchall()]


def main(odoo_bin, config, database):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stale_ids = make_stale_leads(database)
    with psycopg2.connect(dbname=database) as connection, connection.cursor() as cr:
        # The follow-up job due now, so that a cron worker takes it at its next poll.
        cr.execute(
            """UPDATE ir_cron SET nextcall = now() - interval '1 minute', active = TRUE
                WHERE id = (SELECT res_id FROM ir_model_data
                             WHERE module = 'crm_pipeline_optimizer'
                               AND name = 'ir_cron_crm_lead_stale_followup')"""
        )
    log_path = os.path.join(tempfile.gettempdir(), f"odoo-workers-{port}.log")
    process = start_server(
        odoo_bin,
        config,
        database,
        port,
        log_path,
        "--workers",
        "4",
        "--max-cron-threads",
        "2",
        "--log-level",
        "info",
    )
    try:
        up = wait_for_server(base, process)
        check("the server starts with 4 HTTP workers and 2 cron workers", up, log_path)
        if not up:
            return
        users = [Client(base) for _ in range(8)]
        for client in users:
            client.login(database)

        def kanban(client):
            return kanban_page(client)["length"]

        def dashboard(client):
            return client.call("crm.pipeline.dashboard", "get_dashboard_data", "quarter")

        with ThreadPoolExecutor(8) as pool:
            pages = list(pool.map(kanban, users * 3))
            boards = list(pool.map(dashboard, users * 2))
        check("24 parallel kanban pages are served", all(length > 0 for length in pages))
        check(
            "16 parallel dashboards are served, the same numbers for the same reader",
            len({json.dumps(board["kpis"], sort_keys=True) for board in boards}) == 1,
        )
        pids = set()
        with open(log_path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if " werkzeug: " in line or "odoo.http" in line:
                    pids.add(line.split()[2])
        check("requests were served by several worker processes", len(pids) > 1, pids)

        deadline = time.monotonic() + CRON_WAIT
        done = 0
        while time.monotonic() < deadline:
            done = users[0].call(
                "mail.activity",
                "search_count",
                [("res_model", "=", "crm.lead"), ("res_id", "in", stale_ids)],
            )
            if done >= STALE_LEADS:
                break
            time.sleep(5)
        check(
            "a cron worker ran the follow-up job: one follow-up per stale lead",
            done == STALE_LEADS,
            f"{done} of {STALE_LEADS}",
        )
        with open(log_path, encoding="utf-8", errors="replace") as lines:
            errors = [line for line in lines if " ERROR " in line or " CRITICAL " in line]
        check("no error in the server's log", not errors, "".join(errors[:5]))
    finally:
        stop_server(process)
        passed = sum(results)
        print(f"{passed} passed, {len(results) - passed} failed")


if __name__ == "__main__":
    main(*sys.argv[1:4])
