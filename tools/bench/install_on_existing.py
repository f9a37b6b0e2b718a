"""Installing the module on an existing CRM database, as an administrator would: the module
is uninstalled from the benchmark database (leads, messages and activities stay), then
installed again with odoo-bin; the scheduler's work that the install leaves behind (scores
and match keys of the leads already there) is then run and timed apart. Anchor: updating
crm itself (-u crm) on the same database in the same run. One figure a line:

    python tools/bench/install_on_existing.py ODOO_BIN ODOO_CONF DATABASE
"""

# pylint: disable=print-used
import subprocess
import sys
import time

import odoo
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

MODULE = "crm_pipeline_optimizer"


def figure(name, value, unit):
    if isinstance(value, float):
        value = f"{value:.4g}" if value < 100 else f"{value:.1f}"
    print(f"{name}: {value} {unit}", flush=True)


def odoo_bin(odoo_bin_path, config, database, *options):
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, odoo_bin_path, "-c", config, "-d", database, "--stop-after-init",
         "--log-level=warn", *options],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - start


def with_env(database, function):
    # A registry loaded anew: the module was installed or uninstalled by another process.
    with Registry.new(database).cursor() as cr:
        return function(api.Environment(cr, SUPERUSER_ID, {}))


def leads_and_keys(env):
    env.cr.execute(
        "SELECT count(*), count(email_match_key), count(score) FROM crm_lead"
        if "email_match_key" in env["crm.lead"]._fields
        else "SELECT count(*), NULL, NULL FROM crm_lead"
    )
    return env.cr.fetchone()


def uninstall(env):
    start = time.perf_counter()
    env["ir.module.module"].search([("name", "=", MODULE)]).button_immediate_uninstall()
    return time.perf_counter() - start


def run_scheduled_work(env):
    """What the scheduler does after the install: the scoring job once, the match keys
    job until none is left (each run is its own transaction there; here, one commit a
    run too)."""
    Lead = env["crm.lead"]
    start = time.perf_counter()
    Lead._update_all_scores(commit=True)
    scoring = time.perf_counter() - start
    runs = 0
    start = time.perf_counter()
    while env["ir.config_parameter"].get_param("crm_pipeline_optimizer.match_keys_pending"):
        Lead._cron_fill_match_keys()
        env.cr.commit()
        runs += 1
    return scoring, time.perf_counter() - start, runs


def main(odoo_bin_path, config, database):
    odoo.tools.config.parse_config(["-c", config, "-d", database, "--log-level=warn"])
    leads, keys_before, _scores = with_env(database, leads_and_keys)
    size = f"{leads // 1000}k"
    figure(f"install_on_existing_{size}_leads", leads, "leads")
    figure(
        f"install_on_existing_{size}_crm_update_anchor",
        odoo_bin(odoo_bin_path, config, database, "-u", "crm"),
        "s",
    )
    figure(f"install_on_existing_{size}_uninstall", with_env(database, uninstall), "s")
    figure(
        f"install_on_existing_{size}_install",
        odoo_bin(odoo_bin_path, config, database, "-i", MODULE, "--without-demo=all"),
        "s",
    )
    scoring, keys, runs = with_env(database, run_scheduled_work)
    figure(f"install_on_existing_{size}_scheduled_scoring", scoring, "s")
    figure(f"install_on_existing_{size}_scheduled_match_keys", keys, "s")
    figure(f"install_on_existing_{size}_scheduled_match_keys_runs", runs, "runs")
    _leads, keys_after, scores = with_env(database, leads_and_keys)
    figure(f"install_on_existing_{size}_keys_before_after", f"{keys_before}/{keys_after}", "leads")
    figure(f"install_on_existing_{size}_scored_after", scores, "leads")


if __name__ == "__main__":
    main(*sys.argv[1:4])
