"""Upgrade from the first released version of the module, with data.

    python tools/check_upgrade.py prepare ODOO_CONF DATABASE   (the old version installed)
    python tools/check_upgrade.py verify ODOO_CONF DATABASE    (after `-u` with this code)

`prepare` gives the database what users leave behind: stars set by hand, qualification
facts, a consultant's edit of a seeded criterion, leads with emails and phones, and notes
each lead's last update. `verify` checks that the upgrade kept all of it, filled what the
new version stores (match keys, escalation flags) without touching any lead's last update,
and that the new features work on the upgraded data. Prints one line per check and ends
with "N passed, N failed".
"""

import sys
from unittest.mock import patch

import odoo
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tools import SQL

MODULE = "crm_pipeline_optimizer"
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok' if ok else 'FAILED'}: {name}{' — ' + str(detail) if detail and not ok else ''}")


def prepare(env):
    Lead = env["crm.lead"]
    hot = Lead.create(
        {
            "name": "Upgrade: stars by hand",
            "type": "opportunity",
            "priority": "3",
            "email_from": "Ann.Lee+web@Quxbridge-Upgrade.example.com",
            "phone": "+1 (202) 555-0147",
            "partner_name": "Quxbridge Upgrade Inc.",
            "contact_name": "Ann Lee",
        }
    )
    twin = Lead.create(
        {
            "name": "Upgrade: the same customer again",
            "type": "opportunity",
            "email_from": "ann.lee@quxbridge-upgrade.example.com",
            "contact_name": "Ann Lee",
        }
    )
    qualified = Lead.create(
        {
            "name": "Upgrade: qualified",
            "type": "opportunity",
            "is_budget_confirmed": True,
            "has_decision_maker": True,
        }
    )
    criterion = env.ref(f"{MODULE}.scoring_criterion_budget")
    criterion.points = 33
    env.flush_all()
    env.cr.execute(
        "CREATE TABLE upgrade_check_before AS SELECT id, write_date, priority, score FROM crm_lead"
    )
    env["ir.config_parameter"].set_param(
        "upgrade_check.leads", ",".join(map(str, (hot | twin | qualified).ids))
    )
    print(f"prepared: {Lead.search_count([])} leads")


def rounded(value):
    """`value` with its floats rounded to the cent: sums added in another order."""
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item) for item in value]
    return value


def verify(env):
    hot_id, twin_id, qualified_id = map(
        int, env["ir.config_parameter"].get_param("upgrade_check.leads").split(",")
    )
    Lead = env["crm.lead"].with_context(active_test=False)
    hot, twin, qualified = Lead.browse(hot_id), Lead.browse(twin_id), Lead.browse(qualified_id)
    module = env["ir.module.module"].search([("name", "=", MODULE)])
    version = odoo.modules.module.get_manifest(MODULE)["version"]
    check(
        f"the module is installed at version {version}",
        module.state == "installed" and module.latest_version == version,
        (module.state, module.latest_version),
    )
    check(
        "the upgrade changed no lead's last update",
        not env.execute_query(
            SQL(
                """SELECT b.id FROM upgrade_check_before b JOIN crm_lead l ON l.id = b.id
                    WHERE l.write_date IS DISTINCT FROM b.write_date LIMIT 5"""
            )
        ),
    )
    check(
        "stars set by hand are kept",
        hot.priority == "3" and hot.is_priority_manual,
        (hot.priority, hot.is_priority_manual),
    )
    check(
        "the consultant's criterion points are kept",
        env.ref(f"{MODULE}.scoring_criterion_budget").points == 33,
    )
    check("qualification facts are kept", qualified.is_budget_confirmed and qualified.score > 0)
    check(
        "the match keys of existing leads are filled",
        hot.email_match_key == "ann.lee@quxbridge-upgrade.example.com"
        and hot.phone_match_key == "+12025550147"
        and hot.company_match_key == "quxbridge upgrade",
        (hot.email_match_key, hot.phone_match_key, hot.company_match_key),
    )
    missing = env.execute_query(
        SQL(
            "SELECT count(*) FROM crm_lead WHERE email_from IS NOT NULL AND email_match_key IS NULL"
        )
    )[0][0]
    check("every lead with an email has its email key", missing == 0, missing)
    check("existing leads are not escalated", not Lead.search_count([("is_escalated", "=", True)]))
    check("the existing duplicates are found as similar", twin in hot.similar_lead_ids)
    rule = env.ref(f"{MODULE}.automation_stale_notification", raise_if_not_found=False)
    check(
        "the seeded quiet-deal rule has its delay",
        not rule or rule.trg_date_range == 1,
        rule and rule.trg_date_range,
    )
    counted = env.execute_query(
        SQL(
            """SELECT (SELECT count(*) FROM crm_lead),
                      (SELECT SUM(quantity) FROM crm_pipeline_figure WHERE kind = 'created')"""
        )
    )[0]
    check("the dashboard's kept figures count every lead", counted[0] == counted[1], counted)
    Dashboard = env["crm.pipeline.dashboard"].with_user(env.ref("base.user_admin"))
    kept = Dashboard.get_dashboard_data("year")["kpis"]
    with patch.object(
        type(Dashboard.env["crm.pipeline.figure"]), "_reader_rules", lambda self: None
    ):
        live = Dashboard.get_dashboard_data("year")["kpis"]
    check("the KPIs from the kept figures equal those from the leads", kept == live)
    for method in ("get_forecast_data", "get_stage_flow_data"):
        kept = getattr(Dashboard, method)("quarter")
        with patch.object(
            type(Dashboard.env["crm.pipeline.figure"]), "_reader_rules", lambda self: None
        ):
            live = getattr(Dashboard, method)("quarter")
        check(
            f"{method} from the kept figures equals it from the records",
            rounded(kept) == rounded(live),
        )
    env["crm.lead.duplicate.cluster"]._find_clusters([("id", "in", (hot | twin).ids)])
    master = (hot | twin)._merge_into(hot)
    check("upgraded leads merge", not twin.exists() and master == hot)
    data = env["crm.pipeline.dashboard"].with_user(env.ref("base.user_admin")).get_dashboard_data()
    check("the dashboard opens on the upgraded database", "kpis" in data)


def main(action, config, database):
    odoo.tools.config.parse_config(["-c", config, "-d", database, "--log-level=warn"])
    with Registry(database).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        if action == "prepare":
            prepare(env)
            return
        verify(env)
        cr.rollback()
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")


if __name__ == "__main__":
    main(*sys.argv[1:4])
