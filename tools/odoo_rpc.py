"""A JSON-RPC client of a running Odoo server, for the checks that start one."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar

# What the pipeline kanban reads for a card.
KANBAN_FIELDS = {
    "name": {},
    "stage_id": {"fields": {"display_name": {}}},
    "priority": {},
    "score": {},
    "days_in_stage": {},
    "sla_state": {},
    "is_stale": {},
    "user_id": {"fields": {"display_name": {}}},
}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """One browser session: JSON-RPC with its own cookie."""

    def __init__(self, base):
        self.base = base
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def rpc(self, path, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params}).encode()
        request = urllib.request.Request(
            self.base + path, body, {"Content-Type": "application/json"}
        )
        with self.opener.open(request, timeout=60) as response:
            reply = json.load(response)
        if "error" in reply:
            raise RuntimeError(reply["error"].get("data", {}).get("message", reply["error"]))
        return reply["result"]

    def login(self, database):
        return self.rpc(
            "/web/session/authenticate", {"db": database, "login": "admin", "password": "admin"}
        )

    def call(self, model, method, *args, **kwargs):
        return self.rpc(
            f"/web/dataset/call_kw/{model}/{method}",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )


def wait_for_server(base, process, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(base + "/web/login", timeout=5) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(1)
    return False


def start_server(odoo_bin, config, database, port, log_path, *options):
    """An Odoo server of this database on 127.0.0.1:`port`, its log in `log_path`."""
    with open(log_path, "w", encoding="utf-8") as log_file:
        return subprocess.Popen(
            [
                sys.executable,
                odoo_bin,
                "-c",
                config,
                "-d",
                database,
                "--db-filter",
                f"^{database}$",
                "--http-interface",
                "127.0.0.1",
                "--http-port",
                str(port),
                "--gevent-port",
                str(free_port()),
                *options,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_server(process):
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def kanban_page(client):
    """One page of the pipeline kanban, as the web client reads it."""
    return client.call(
        "crm.lead",
        "web_search_read",
        [("type", "=", "opportunity")],
        KANBAN_FIELDS,
        limit=80,
        order="priority desc, id desc",
    )
