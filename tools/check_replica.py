"""Odoo with a read replica: a second PostgreSQL cluster on this machine, a hot standby of
the primary fed by streaming replication, and Odoo started with --db_replica_host and
--db_replica_port. The dashboard, the kanban page and the similar leads (methods marked
@api.readonly, and Odoo's own readers) must run on the standby with the primary's figures;
when the standby is down, Odoo falls back to the primary and nothing is lost.

    python tools/check_replica.py ODOO_BIN ODOO_CONF DATABASE

Uses a throwaway database that has the module and crm's demo data (admin / admin). Run as
root (PostgreSQL's server runs as the postgres user). Prints one line per check and ends
with "N passed, N failed".
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg2
from odoo_rpc import Client, free_port, kanban_page, start_server, stop_server, wait_for_server

SLOT = "crm_pipeline_optimizer_check"
REPLAY_WAIT = 30  # seconds

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'ok' if ok else 'FAILED'}: {name}{' — ' + str(detail) if detail and not ok else ''}")


def as_postgres(*command):
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True, check=True
    )


class Standby:
    """A hot standby of the primary cluster in a folder of its own, on a socket there."""

    def __init__(self, database):
        self.database = database
        with psycopg2.connect(dbname=database) as connection, connection.cursor() as cr:
            cr.execute("SHOW server_version_num")
            major = int(cr.fetchone()[0]) // 10000
        self.bin = f"/usr/lib/postgresql/{major}/bin"
        self.folder = tempfile.mkdtemp(prefix="crm-pipeline-standby-")
        self.data = os.path.join(self.folder, "data")
        self.log = os.path.join(self.folder, "standby.log")
        self.port = free_port()
        shutil.chown(self.folder, "postgres", "postgres")
        os.chmod(self.folder, 0o700)

    def create(self):
        # A replication slot keeps the WAL the standby has not received while it is down.
        as_postgres(
            f"{self.bin}/pg_basebackup", "-D", self.data, "-R", "-X", "stream", "-c", "fast",
            "-C", "-S", SLOT,
        )  # fmt: skip
        with open(os.path.join(self.data, "postgresql.conf"), "w", encoding="utf-8") as conf:
            conf.write(
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.folder}'\n"
                "listen_addresses = ''\n"
                "hot_standby = on\n"
                "log_statement = 'all'\n"
                "log_line_prefix = '%m [%p] %u@%d '\n"
            )
        with open(os.path.join(self.data, "pg_hba.conf"), "w", encoding="utf-8") as hba:
            hba.write("local all all peer\n")
        shutil.chown(os.path.join(self.data, "postgresql.conf"), "postgres", "postgres")
        shutil.chown(os.path.join(self.data, "pg_hba.conf"), "postgres", "postgres")

    def start(self):
        as_postgres(f"{self.bin}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "start")

    def stop(self):
        as_postgres(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def query(self, sql, params=()):
        connection = psycopg2.connect(dbname=self.database, host=self.folder, port=self.port)
        with connection, connection.cursor() as cr:
            cr.execute(sql, params)
            rows = cr.fetchall()
        connection.close()
        return rows

    def log_size(self):
        return os.path.getsize(self.log)

    def statements_since(self, offset):
        with open(self.log, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            return log.read()

    def remove(self):
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        with psycopg2.connect(dbname=self.database) as connection, connection.cursor() as cr:
            cr.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s",
                (SLOT,),
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def wait_until(condition, seconds=REPLAY_WAIT):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def read_through_odoo(client, lead_id):
    """What a manager and a salesperson read: the dashboard, the kanban, similar leads."""
    return {
        "dashboard": client.call("crm.pipeline.dashboard", "get_dashboard_data", "quarter"),
        "kanban": kanban_page(client),
        "similar": client.rpc(
            "/web/dataset/call_button/crm.lead/action_show_similar_leads",
            {
                "model": "crm.lead",
                "method": "action_show_similar_leads",
                "args": [[lead_id]],
                "kwargs": {},
            },
        )["domain"],
    }


def check_reads_on_the_standby(standby, client, lead_id):
    offset = standby.log_size()
    reads = read_through_odoo(client, lead_id)
    statements = standby.statements_since(offset)
    check(
        "the dashboard's queries ran on the standby",
        "crm_pipeline_figure" in statements,
        statements[-300:],
    )
    check("the kanban page's query ran on the standby", 'FROM "crm_lead"' in statements)
    check("the similar leads' query ran on the standby", "email_match_key" in statements)
    return reads


def check_fallback_to_the_primary(standby, client, lead_id, on_standby, log_path):
    standby.stop()
    on_primary = read_through_odoo(client, lead_id)
    for name in ("dashboard", "kanban", "similar"):
        check(
            f"standby down: the {name} is served by the primary, the same as on the standby",
            json.dumps(on_primary[name], sort_keys=True)
            == json.dumps(on_standby[name], sort_keys=True),
        )
    with open(log_path, encoding="utf-8", errors="replace") as log:
        check(
            "Odoo said it fell back to the primary",
            "falling back to read-write cursor" in log.read(),
        )
    new_id = client.call("crm.lead", "create", {"name": "Written while the standby is down"})
    check(
        "a lead written while the standby is down is kept by the primary",
        client.call("crm.lead", "search_count", [("id", "=", new_id)]) == 1,
    )
    standby.start()
    check(
        "the standby, started again, catches up with that lead",
        wait_until(lambda: standby.query("SELECT 1 FROM crm_lead WHERE id = %s", (new_id,))),
    )


def main(odoo_bin, config, database):
    standby = Standby(database)
    process = None
    try:
        standby.create()
        standby.start()
        check(
            "a hot standby streams from the primary",
            standby.query("SELECT pg_is_in_recovery()") == [(True,)]
            and wait_until(
                lambda: standby.query("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
            ),
        )
        port = free_port()
        log_path = os.path.join(standby.folder, "odoo.log")
        process = start_server(
            odoo_bin, config, database, port, log_path,
            "--db_replica_host", standby.folder, "--db_replica_port", str(standby.port),
            "--log-level", "info",
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        up = wait_for_server(base, process)
        check("Odoo starts with the replica options", up, log_path)
        if not up:
            return
        client = Client(base)
        client.login(database)
        lead_id = client.call("crm.lead", "search", [("email_from", "!=", False)], limit=1)[0]
        on_standby = check_reads_on_the_standby(standby, client, lead_id)
        check_fallback_to_the_primary(standby, client, lead_id, on_standby, log_path)
    finally:
        if process is not None:
            stop_server(process)
        standby.remove()
        passed = sum(results)
        print(f"{passed} passed, {len(results) - passed} failed")


if __name__ == "__main__":
    main(*sys.argv[1:4])
