"""Two follow-up cron workers and a salesperson at the same time, in real, separate
PostgreSQL transactions (Odoo's test cursors cannot show this: they share one transaction).

    python tools/check_concurrency.py ODOO_CONF DATABASE

On a throwaway database that has the module: 30 stale opportunities; worker A takes a
batch and keeps its transaction open; worker B, meanwhile, must take other leads; a
salesperson saving a lead of A's batch waits for A, then gets through (Odoo retries a
request that hits a serialization failure, as it does for every RPC and HTTP request);
the job then runs to the end. Every lead gets exactly one follow-up, and a second run
creates none. Then the nightly rescoring as the cron runs it, its batches shared between
database connections: every open lead scored once, as the lead's own computation gives,
and a second run changes nothing. Last, the dashboard's kept figures: two salespeople
changing the same figures at once and the nightly fold meanwhile, none waiting, the figures
equal to a recount. Prints one line per check and ends with "N passed, N failed".
"""

import threading
import time
from functools import partial

import odoo
from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.service.model import retrying
from odoo.tools import SQL

LEADS = 30
BATCH = 10

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok' if ok else 'FAILED'}: {name}{' — ' + detail if detail and not ok else ''}")


def prepare(registry):
    """30 opportunities quiet for 30 days; every other lead of the database handled."""
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        admin = env.ref("base.user_admin")
        leads = env["crm.lead"].create(
            [
                {"name": f"Concurrency {index}", "type": "opportunity", "user_id": admin.id}
                for index in range(LEADS)
            ]
        )
        env.flush_all()
        cr.execute(
            SQL(
                """UPDATE crm_lead SET date_stale = now() WHERE id NOT IN %(ids)s;
                   UPDATE crm_lead
                      SET date_last_stage_update = now() - interval '30 days',
                          write_date = now() - interval '30 days', date_stale = NULL
                    WHERE id IN %(ids)s;
                   DELETE FROM mail_activity WHERE res_model = 'crm.lead' AND res_id IN %(ids)s""",
                ids=tuple(leads.ids),
            )
        )
        return leads.ids


def run_batch(cr):
    env = api.Environment(cr, SUPERUSER_ID, {})
    return set(env["crm.lead"]._cron_stale_followups(batch_size=BATCH).ids)


def salesperson_edits(registry, lead_id, outcome):
    """A salesperson renames a lead, through Odoo's retry of serialization failures."""
    started = time.monotonic()
    try:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            lead = env["crm.lead"].browse(lead_id)
            retrying(partial(lead.write, {"name": "Renamed while the job runs"}), env)
        outcome["ok"] = True
    except Exception as error:  # any failure is reported by the check
        outcome["error"] = repr(error)
    outcome["seconds"] = time.monotonic() - started


def followups(registry, ids):
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        activity_type = env.company.pipeline_followup_activity_type_id or env.ref(
            "crm_pipeline_optimizer.mail_activity_type_stale_followup"
        )
        cr.execute(
            SQL(
                """SELECT res_id, COUNT(*) FROM mail_activity
                    WHERE res_model = 'crm.lead' AND res_id IN %s AND activity_type_id = %s
                 GROUP BY res_id""",
                tuple(ids),
                activity_type.id,
            )
        )
        return dict(cr.fetchall())


def main(config, database):
    odoo.tools.config.parse_config(["-c", config, "-d", database, "--log-level=warn"])
    registry = Registry(database)
    ids = prepare(registry)

    cr_a, cr_b = registry.cursor(), registry.cursor()
    try:
        batch_a = run_batch(cr_a)  # A's transaction stays open: its leads stay locked
        batch_b = run_batch(cr_b)
        check("worker A takes a full batch", len(batch_a) == BATCH, str(len(batch_a)))
        check("worker B takes a full batch meanwhile", len(batch_b) == BATCH, str(len(batch_b)))
        check("the two workers take different leads", not batch_a & batch_b, str(batch_a & batch_b))

        outcome = {}
        editor = threading.Thread(
            target=salesperson_edits, args=(registry, min(batch_a), outcome), daemon=True
        )
        editor.start()
        time.sleep(1)
        check("the salesperson waits while worker A holds the lead", editor.is_alive())
        cr_a.commit()
        cr_b.commit()
    finally:
        cr_a.close()
        cr_b.close()
    editor.join(60)
    check(
        "the salesperson's save goes through once worker A is done",
        outcome.get("ok", False),
        outcome.get("error", "still waiting"),
    )
    with registry.cursor() as cr:
        name = api.Environment(cr, SUPERUSER_ID, {})["crm.lead"].browse(min(batch_a)).name
    check("the salesperson's change is kept", name == "Renamed while the job runs", name)

    runs = 0
    while runs < 10:
        runs += 1
        with registry.cursor() as cr:
            if not run_batch(cr):
                break
    counts = followups(registry, ids)
    check(
        "every stale lead has exactly one follow-up",
        len(counts) == LEADS and set(counts.values()) == {1},
        f"{len(counts)} leads followed up, counts {sorted(set(counts.values()))}",
    )
    with registry.cursor() as cr:
        again = run_batch(cr)
    check("a second run creates nothing", not again, str(again))

    check_parallel_rescoring(registry)
    check_kept_figures(registry, ids)

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")


def check_parallel_rescoring(registry):
    """The nightly rescoring as the cron runs it: batches committed one by one and shared
    between connections (tiny batches here, so that every connection gets several)."""
    from odoo.addons.crm_pipeline_optimizer.models import crm_lead_scoring as crm_lead_module

    crm_lead_module.SCORE_BATCH_SIZE = 5
    open_leads = SQL("active AND COALESCE(probability, 0) < 100")
    with registry.cursor() as cr:
        cr.execute(
            SQL("UPDATE crm_lead SET score = NULL, score_details = NULL WHERE %s", open_leads)
        )
        cr.execute(SQL("SELECT COUNT(*) FROM crm_lead WHERE %s", open_leads))
        open_count = cr.fetchone()[0]
    with registry.cursor() as cr:
        seen, changed = api.Environment(cr, SUPERUSER_ID, {})["crm.lead"]._update_all_scores(
            commit=True
        )
    check(
        "parallel rescoring scores and writes every open lead once",
        seen == changed == open_count,
        f"{seen} seen, {changed} changed, {open_count} open",
    )
    with registry.cursor() as cr:
        Lead = api.Environment(cr, SUPERUSER_ID, {})["crm.lead"]
        leads = Lead.search([("active", "=", True), ("probability", "<", 100)])
        expected = leads._score_values()
        cr.execute(
            SQL(
                "SELECT id, score, score_rule, score_learned FROM crm_lead WHERE id IN %s",
                tuple(leads.ids),
            )
        )
        wrong = [row[0] for row in cr.fetchall() if tuple(row[1:]) != expected[row[0]][:3]]
    check("each stored score equals the lead's own computation", not wrong, str(wrong[:10]))
    with registry.cursor() as cr:
        _seen, again = api.Environment(cr, SUPERUSER_ID, {})["crm.lead"]._update_all_scores(
            commit=True
        )
    check("a second parallel run changes nothing", again == 0, str(again))


def kept_figures(cr):
    """The dashboard's kept figures, and the same counted again from the leads (in a
    savepoint rolled back)."""
    Figure = api.Environment(cr, SUPERUSER_ID, {})["crm.pipeline.figure"]
    kept = Figure._totals()
    cr.execute("SAVEPOINT recount")
    Figure._rebuild_figures()
    counted = Figure._totals()
    cr.execute("ROLLBACK TO SAVEPOINT recount")
    return kept, counted


def move_lead(cr, lead_id, stage):
    env = api.Environment(cr, SUPERUSER_ID, {})
    lead = env["crm.lead"].browse(lead_id)
    lead.write({"stage_id": env.ref(stage).id, "expected_revenue": 1000})
    lead.activity_schedule("mail.mail_activity_data_todo")
    env.flush_all()


def check_kept_figures(registry, ids):
    """Two salespeople move deals of the same salesperson and stage (the same figures) at
    the same time, and the nightly fold runs meanwhile: nobody waits for anybody, and the
    figures kept equal the figures counted again."""
    cr_a, cr_b, cr_fold = registry.cursor(), registry.cursor(), registry.cursor()
    try:
        move_lead(cr_a, ids[0], "crm.stage_lead2")  # A's transaction stays open
        started = time.monotonic()
        move_lead(cr_b, ids[1], "crm.stage_lead2")
        cr_b.commit()
        check(
            "a second salesperson moving a deal of the same figures does not wait",
            time.monotonic() - started < 2,
        )
        started = time.monotonic()
        api.Environment(cr_fold, SUPERUSER_ID, {})["crm.pipeline.figure"]._cron_fold_figures()
        cr_fold.commit()
        check("the fold does not wait for an open transaction", time.monotonic() - started < 5)
        cr_a.commit()
    finally:
        cr_a.close()
        cr_b.close()
        cr_fold.close()
    with registry.cursor() as cr:
        kept, counted = kept_figures(cr)
    check(
        "the figures kept through both changes and the fold equal a recount",
        kept == counted and bool(kept),
        f"{len(set(kept) ^ set(counted))} keys differ",
    )


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:3])
