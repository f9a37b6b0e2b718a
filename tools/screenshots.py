"""Screenshots of the product for its Apps page (static/description/), taken from the demo
database in headless Chromium as the administrator sees it, and the PDF report's first
page through pdftoppm.

    python tools/screenshots.py ODOO_BIN ODOO_CONF DATABASE OUTPUT_DIR

Starts Odoo on a free port of this machine, logs in (admin / admin), drives Chromium over
its DevTools protocol, stops both.
"""

# pylint: disable=print-used
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket
from odoo_rpc import Client, free_port, start_server, stop_server, wait_for_server

WIDTH, HEIGHT = 1440, 900
# (file, URL path or a function of the demo records giving one, what shows it is ready)
PAGES = [
    ("pipeline_kanban.png", "/odoo/crm", ".o_kanban_record .o_pipeline_score_badge"),
    (
        "lead_form.png",
        lambda ids: f"/odoo/crm/{ids['qualified_full']}",
        ".o_form_view .o_field_widget[name='score_explanation']",
    ),
    (
        "dashboard.png",
        "/odoo/action-crm_pipeline_optimizer.action_crm_pipeline_dashboard",
        ".o_pipeline_kpi canvas, .o_pipeline_chart canvas",
    ),
    (
        "duplicates.png",
        "/odoo/action-crm_pipeline_optimizer.crm_lead_duplicate_cluster_action",
        ".o_data_row, .o_kanban_record",
    ),
    (
        "scoring_criteria.png",
        "/odoo/action-crm_pipeline_optimizer.crm_lead_scoring_criterion_action",
        ".o_data_row",
    ),
]


class Page:
    """One tab of a headless Chromium, driven over the DevTools protocol."""

    def __init__(self, port):
        self.port = port
        self.profile = tempfile.mkdtemp(prefix="crm-pipeline-screenshots-")
        self.process = subprocess.Popen(
            [
                "chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                f"--window-size={WIDTH},{HEIGHT}", f"--remote-debugging-port={port}",
                f"--user-data-dir={self.profile}", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.socket = websocket.create_connection(self._page_socket_url(), timeout=60)
        self.next_id = 0

    def _page_socket_url(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json") as response:
                    targets = json.load(response)
                return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            except (OSError, StopIteration):
                time.sleep(0.5)
        raise RuntimeError("Chromium did not start")

    def send(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_for(self, selector, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.send(
                "Runtime.evaluate",
                expression=f"Boolean(document.querySelector({json.dumps(selector)}))",
                returnByValue=True,
            )["result"].get("value")
            if found:
                time.sleep(1.5)  # charts and lazy parts settle
                return True
            time.sleep(0.5)
        return False

    def screenshot(self, path):
        # Notifications (e.g. "the page is out of date" after an update) are not the page.
        self.send(
            "Runtime.evaluate",
            expression="document.querySelectorAll('.o_notification').forEach((n) => n.remove())",
        )
        data = self.send("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))

    def close(self):
        self.socket.close()
        self.process.terminate()
        self.process.wait(30)
        shutil.rmtree(self.profile, ignore_errors=True)


def demo_ids(client):
    ids = {}
    for name in ("qualified_full",):
        ids[name] = client.call(
            "ir.model.data",
            "search_read",
            [("module", "=", "crm_pipeline_optimizer"), ("name", "=", f"crm_lead_demo_{name}")],
            ["res_id"],
        )[0]["res_id"]
    return ids


def report_page(client, base, output_dir):
    """The Sales team's pipeline health report, first page, as PNG."""
    team_id = client.call("crm.team", "search", [("name", "=", "Sales")], limit=1)[0]
    url = f"{base}/report/pdf/crm_pipeline_optimizer.report_pipeline_health/{team_id}"
    with client.opener.open(url, timeout=120) as response:
        pdf = response.read()
    with tempfile.TemporaryDirectory() as folder:
        pdf_path = os.path.join(folder, "report.pdf")
        with open(pdf_path, "wb") as file:
            file.write(pdf)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", pdf_path,
             os.path.join(output_dir, "pipeline_health_report")],
            check=True,
        )  # fmt: skip


def main(odoo_bin, config, database, output_dir):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = os.path.join(tempfile.gettempdir(), f"odoo-screenshots-{port}.log")
    server = start_server(odoo_bin, config, database, port, log_path, "--log-level", "warn")
    page = None
    try:
        if not wait_for_server(base, server):
            raise RuntimeError(f"Odoo did not start; see {log_path}")
        client = Client(base)
        client.login(database)
        ids = demo_ids(client)
        session = next(cookie for cookie in client.cookies if cookie.name == "session_id")
        page = Page(free_port())
        page.send("Network.enable")
        page.send("Network.setCookie", name="session_id", value=session.value, url=base, path="/")
        page.send("Page.enable")
        for filename, path, ready in PAGES:
            url = base + (path(ids) if callable(path) else path)
            page.send("Page.navigate", url=url)
            if not page.wait_for(ready):
                raise RuntimeError(f"{url}: {ready} never showed")
            page.screenshot(os.path.join(output_dir, filename))
            print(f"{filename}: {url}")
        report_page(client, base, output_dir)
        print("pipeline_health_report.png: the PDF report's first page")
    finally:
        if page is not None:
            page.close()
        stop_server(server)


if __name__ == "__main__":
    main(*sys.argv[1:5])
