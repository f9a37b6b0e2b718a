"""Uninstalls the module from a database that has it (with crm's demo data), checks that
nothing of it is left that could break CRM, installs it again and checks it is whole.

    python tools/check_install_cycle.py ODOO_CONF DATABASE

Prints one line per check and ends with "N passed, N failed".
"""

import sys

import odoo
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry

MODULE = "crm_pipeline_optimizer"
# A few stored fields of each model the module extends: (model, field).
OUR_FIELDS = (
    ("crm.stage", "expected_days_min"),
    ("crm.stage", "expected_days_max"),
    ("crm.stage", "exit_criteria"),
    ("crm.lead", "score"),
    ("crm.lead", "is_priority_manual"),
    ("crm.lead", "date_stale"),
    ("crm.lead", "is_escalated"),
    ("crm.team", "stale_after_days"),
    ("res.company", "pipeline_stale_after_days"),
)

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok' if ok else 'FAILED'}: {name}{' — ' + detail if detail and not ok else ''}")


def with_env(dbname, func):
    with Registry(dbname).cursor() as cr:
        return func(api.Environment(cr, SUPERUSER_ID, {}))


def crm_views_render(env):
    views = env["crm.lead"].get_views([(False, "kanban"), (False, "form"), (False, "list")])
    env["crm.stage"].get_views([(False, "form"), (False, "list")])
    return "kanban" in views["views"]


def uninstall(env):
    env["ir.module.module"].search([("name", "=", MODULE)]).button_immediate_uninstall()


def install(env):
    env["ir.module.module"].search([("name", "=", MODULE)]).button_immediate_install()


def lead_stars(env):
    env.cr.execute("SELECT id, COALESCE(priority, '0') FROM crm_lead")
    return dict(env.cr.fetchall())


def lead_write_dates(env):
    env.cr.execute("SELECT id, write_date FROM crm_lead")
    return dict(env.cr.fetchall())


def leftovers(env):
    fields = sum(
        env["ir.model.fields"].search_count([("model", "=", model), ("name", "=", name)])
        for model, name in OUR_FIELDS
    )
    data = env["ir.model.data"].search_count([("module", "=", MODULE)])
    columns = 0
    for model, name in OUR_FIELDS:
        env.cr.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = %s",
            [model.replace(".", "_"), name],
        )
        columns += env.cr.fetchone()[0]
    state = env["ir.module.module"].search([("name", "=", MODULE)]).state
    return fields, data, columns, state


def module_indexes(env):
    """The indexes the module creates itself on crm's and mail's tables."""
    env.cr.execute(
        "SELECT count(*) FROM pg_indexes WHERE indexname IN %s",
        [
            (
                "crm_lead_open_opportunity_write_date_index",
                "crm_lead_contact_company_number_index",
                "crm_lead_open_opportunity_user_stage_index",
                "crm_lead_create_date_figures_index",
                "crm_lead_date_closed_figures_index",
                "mail_message_crm_lead_done_activity_index",
                "crm_lead_company_user_scope_index",
                "crm_lead_user_figures_index",
                "mail_message_crm_lead_done_activity_res_index",
            )
        ],
    )
    return env.cr.fetchone()[0]


def figure_objects(env):
    """The dashboard's kept figures: (triggers, functions, tables, row types)."""
    counts = []
    for query in (
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'crm\\_pipeline\\_%'",
        "SELECT count(*) FROM pg_proc WHERE proname LIKE 'crm\\_pipeline\\_%'",
        "SELECT count(*) FROM pg_class WHERE relname = 'crm_pipeline_figure'",
        "SELECT count(*) FROM pg_type WHERE typname = 'crm_pipeline_figure_row'",
    ):
        env.cr.execute(query)
        counts.append(env.cr.fetchone()[0])
    return tuple(counts)


def check_figure_objects(dbname, name, installed):
    """The kept figures' objects: all of them when `installed`, none otherwise."""
    objects = with_env(dbname, figure_objects)
    expected = (13, 8, 1, 1) if installed else (0, 0, 0, 0)
    check(name, objects == expected, f"{objects} (triggers, functions, tables, types)")


def leads_counted(env):
    """(leads, leads counted by the kept figures)"""
    env.cr.execute(
        """SELECT (SELECT count(*) FROM crm_lead),
                  (SELECT COALESCE(SUM(quantity), 0) FROM crm_pipeline_figure
                    WHERE kind = 'created')"""
    )
    return env.cr.fetchone()


def leads_still_written(env):
    """Without the module, crm's writes of leads, activities and messages go through."""
    lead = env["crm.lead"].search([], limit=1)
    lead.write({"stage_id": env["crm.stage"].search([], limit=1).id, "active": True})
    lead.activity_schedule("mail.mail_activity_data_todo").action_feedback("Done")
    env.flush_all()
    env.cr.rollback()
    return True


def lead_in_negotiation(env):
    """A deal of the user's in the stage the module seeded (not the module's demo data)."""
    stage = env.ref("crm_pipeline_optimizer.stage_negotiation")
    lead = env["crm.lead"].create(
        {"name": "Cycle: in negotiation", "type": "opportunity", "stage_id": stage.id}
    )
    env.cr.commit()
    return lead.id, stage.id


def negotiation_stages(env):
    env.cr.execute("SELECT id FROM crm_stage WHERE name->>'en_US' = 'Negotiation'")
    return [row[0] for row in env.cr.fetchall()]


def leads_not_of_the_module(env):
    env.cr.execute(
        """SELECT count(*) FROM crm_lead
            WHERE id NOT IN (SELECT res_id FROM ir_model_data
                              WHERE module = 'crm_pipeline_optimizer' AND model = 'crm.lead')"""
    )
    return env.cr.fetchone()[0]


def main(conf, dbname):
    odoo.tools.config.parse_config(["-c", conf, "-d", dbname, "--log-level=warn"])
    state = with_env(dbname, lambda env: leftovers(env)[3])
    check("module installed before the cycle", state == "installed", state)
    opportunity_id, stage_id = with_env(dbname, lead_in_negotiation)
    opportunities = with_env(dbname, leads_not_of_the_module)

    with_env(dbname, uninstall)
    fields, data, columns, state = with_env(dbname, leftovers)
    check("uninstalled", state == "uninstalled", state)
    check("no field of the module left", fields == 0, f"{fields} fields")
    check("no column of the module left", columns == 0, f"{columns} columns")
    check("no record of the module left", data == 0, f"{data} ir.model.data rows")
    indexes = with_env(dbname, module_indexes)
    check("no index of the module left", indexes == 0, f"{indexes} indexes")
    check_figure_objects(dbname, "no trigger, function, table or type of the kept figures left", 0)
    kept = with_env(dbname, lambda env: env["crm.lead"].browse(opportunity_id).exists().stage_id.id)
    check(
        "a deal in the module's Negotiation stage keeps it after the uninstall",
        kept == stage_id,
        f"stage {kept}, was {stage_id}",
    )
    check("leads, activities, messages still written", with_env(dbname, leads_still_written))
    check("CRM views still render", with_env(dbname, crm_views_render))
    after = with_env(dbname, leads_not_of_the_module)
    check(
        "the leads that are not the module's demo data are kept",
        after >= opportunities,
        f"{opportunities} before, {after} after",
    )

    stars_before = with_env(dbname, lead_stars)
    write_dates_before = with_env(dbname, lead_write_dates)
    with_env(dbname, install)
    fields, data, columns, state = with_env(dbname, leftovers)
    stars_after = with_env(dbname, lead_stars)
    changed = [lead for lead, stars in stars_before.items() if stars_after.get(lead) != stars]
    check(
        "stars given before the install are kept",
        not changed and any(stars != "0" for stars in stars_before.values()),
        f"{len(changed)} leads changed stars",
    )
    write_dates_after = with_env(dbname, lead_write_dates)
    touched = [lead for lead, date in write_dates_before.items() if write_dates_after[lead] != date]
    check(
        "the install leaves the leads' last update alone (stale deals read it)",
        not touched,
        f"{len(touched)} of {len(write_dates_before)} leads touched",
    )
    check("installed again", state == "installed", state)
    seeded = with_env(dbname, lambda env: env.ref("crm_pipeline_optimizer.stage_negotiation").id)
    stages = with_env(dbname, negotiation_stages)
    check(
        "the kept Negotiation stage is the module's again, not seeded twice",
        seeded == stage_id and stages == [stage_id],
        f"{stages}, seeded {seeded}",
    )
    check("fields back", fields == len(OUR_FIELDS), f"{fields} fields")
    indexes = with_env(dbname, module_indexes)
    check("its indexes back", indexes == 9, f"{indexes} of 9 indexes")
    check_figure_objects(dbname, "the kept figures' triggers, functions, table and type back", 1)
    leads, counted = with_env(dbname, leads_counted)
    check("the kept figures count every lead", leads == counted, f"{counted} of {leads}")
    check("CRM views render with the module", with_env(dbname, crm_views_render))

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
