"""Fills a database with a realistic CRM history for the benchmarks.

    python tools/bench/generate.py ODOO_CONF DATABASE --leads 200000 --seed 42

Reference data (companies, salespeople, teams, tags, UTM, lost reasons) is created through
the ORM. Leads, their stage histories (tracking messages), messages, followers and
activities are inserted set-based, in batches, with the values crm's stored computed
fields would hold (normalized email, email domain, sanitized phone, prorated revenue,
assignment and closing days); `--verify` recomputes them through the ORM on a sample.

The ground truth of duplicates is kept in the table `bench_lead_identity`
(lead_id, identity_id): leads sharing an identity are the same customer contact.
"""

# pylint: disable=print-used
import argparse
import itertools
import math
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from psycopg2.extras import execute_values

sys.path.insert(0, str(Path(__file__).resolve().parent))

from identities import Identity

import odoo
from odoo import SUPERUSER_ID, api
from odoo.addons.iap.tools import iap_tools
from odoo.addons.phone_validation.tools import phone_validation
from odoo.modules.registry import Registry
from odoo.tools import email_normalize

BATCH = 5000
YEARS = 3
DUPLICATE_SHARE = 0.08
STAGE_XMLIDS = [
    "crm.stage_lead1",
    "crm.stage_lead2",
    "crm.stage_lead3",
    "crm_pipeline_optimizer.stage_negotiation",
]
WON_XMLID = "crm.stage_lead4"
# Typical days spent in each open stage (lognormal median, sigma).
STAGE_DAYS = [(2, 0.8), (6, 0.7), (9, 0.7), (14, 0.8)]
OPEN_PROBABILITY = [10, 30, 50, 70]
DEAL_KINDS = ["Licences", "Rollout", "Support", "Pilot", "Upgrade"]


class Generator:
    def __init__(self, env, leads, seed):
        self.env = env
        self.cr = env.cr
        self.total = leads
        self.rng = random.Random(seed)
        self.now = datetime.now().replace(microsecond=0)
        self.started = time.monotonic()

    # ------------------------------------------------------------------ reference data
    def build_reference_data(self):
        env = self.env
        ref = env.ref
        self.stages = [ref(x).id for x in STAGE_XMLIDS]
        self.won_stage = ref(WON_XMLID).id
        companies = env.company | env["res.company"].create(
            [
                {"name": "Bench Romania SRL", "country_id": ref("base.ro").id},
                {"name": "Bench Việt Nam", "country_id": ref("base.vn").id},
            ]
        )
        self.countries = {
            code: env["res.country"].search([("code", "=", code)]).id
            for code in ("US", "RO", "VN", "SA", "IR")
        }
        self.country_phone = {
            cid: (code, env["res.country"].browse(cid).phone_code)
            for code, cid in self.countries.items()
        }
        salesman = ref("sales_team.group_sale_salesman")
        manager = ref("sales_team.group_sale_manager")
        users = env["res.users"].with_context(no_reset_password=True)

        def user(name, login, company, group):
            return {
                "name": name,
                "login": login,
                "company_id": company.id,
                "company_ids": [(6, 0, company.ids)],
                "groups_id": [(6, 0, group.ids)],
            }

        self.teams = []  # (company_id, team_id, [user ids])
        for company in companies:
            for team_no in range(2):
                key = f"{company.id}_{team_no}"
                leader = users.create(
                    user(f"Leader {key}", f"bench_leader_{key}", company, manager)
                )
                members = users.create(
                    [
                        user(f"Salesperson {key}_{n}", f"bench_sales_{key}_{n}", company, salesman)
                        for n in range(4)
                    ]
                )
                team = env["crm.team"].create(
                    {
                        "name": f"Bench Team {company.name} {team_no + 1}",
                        "company_id": company.id,
                        "user_id": leader.id,
                        "member_ids": [(6, 0, members.ids)],
                    }
                )
                self.teams.append((company.id, team.id, members.ids))
        self.company_weights = {companies[0].id: 60, companies[1].id: 25, companies[2].id: 15}
        self.company_of_identity = {}
        self.partner_of_user = dict(
            env["res.users"]
            .browse([u for t in self.teams for u in t[2]])
            .mapped(lambda u: (u.id, u.partner_id.id))
        )
        self.tags = env["crm.tag"].create([{"name": f"Bench tag {n}"} for n in range(15)]).ids
        self.sources = (
            env["utm.source"].create([{"name": f"Bench source {n}"} for n in range(8)]).ids
        )
        self.mediums = (
            env["utm.medium"].create([{"name": f"Bench medium {n}"} for n in range(5)]).ids
        )
        self.campaigns = (
            env["utm.campaign"].create([{"name": f"Bench campaign {n}"} for n in range(10)]).ids
        )
        reasons = ["Price", "Chose a competitor", "No budget", "No decision", "Timing"]
        self.lost_reasons = (
            env["crm.lost.reason"].search([]).ids
            + env["crm.lost.reason"].create([{"name": r} for r in reasons]).ids
        )
        self.activity_types = [
            ref("mail.mail_activity_data_call").id,
            ref("mail.mail_activity_data_email").id,
        ]
        self.model_id = env["ir.model"]._get_id("crm.lead")
        self.stage_field_id = env["ir.model.fields"]._get_ids("crm.lead")["stage_id"]
        self.subtype_note = ref("mail.mt_note").id
        self.subtype_comment = ref("mail.mt_comment").id
        self.subtype_activity = ref("mail.mt_activities").id
        self.subtype_stage = ref("crm.mt_lead_stage", raise_if_not_found=False)
        self.subtype_stage = self.subtype_stage.id if self.subtype_stage else self.subtype_note
        self.cr.execute(
            "CREATE TABLE IF NOT EXISTS bench_lead_identity "
            "(lead_id integer PRIMARY KEY, identity_id integer NOT NULL)"
        )
        env.flush_all()

    # ------------------------------------------------------------------ leads
    def pick_identity(self, identities):
        """(identity id, identity, contact data as typed on this lead)."""
        if identities and self.rng.random() < DUPLICATE_SHARE:
            identity_id = self.rng.randrange(len(identities))
            identity = identities[identity_id]
            return identity_id, identity, identity.typed_again(self.rng)
        identity = Identity(self.rng, len(identities))
        identities.append(identity)
        return len(identities) - 1, identity, identity.first_contact()

    def stage_history(self, create_date):
        """Stage visits from New on: [(stage_id, entered), ...] and the outcome."""
        rng = self.rng
        age_days = (self.now - create_date).days
        if age_days > 60:
            outcome = rng.choices(["won", "lost", "open"], weights=[22, 45, 33])[0]
        else:
            outcome = rng.choices(["won", "lost", "open"], weights=[5, 10, 85])[0]
        last_open = {"won": 3, "lost": rng.randrange(4), "open": rng.randrange(4)}[outcome]
        visits, entered = [], create_date
        for position in range(last_open + 1):
            visits.append((self.stages[position], entered))
            median, sigma = STAGE_DAYS[position]
            entered = entered + timedelta(days=rng.lognormvariate(math.log(median), sigma))
            if entered >= self.now and outcome != "open":
                entered = self.now - timedelta(hours=rng.randrange(1, 48))
        closed = None
        if outcome == "won":
            visits.append((self.won_stage, min(entered, self.now)))
            closed = visits[-1][1]
        elif outcome == "lost":
            closed = min(entered, self.now)
        return visits, outcome, closed

    def lead_row(self, identity, typed):
        rng = self.rng
        contact, company, email, phone = typed
        # A customer contact deals with one company of the group: its duplicates are typed
        # again in that company's CRM.
        company_id = self.company_of_identity.get(id(identity))
        if company_id is None:
            company_id = rng.choices(
                list(self.company_weights), weights=self.company_weights.values()
            )[0]
            self.company_of_identity[id(identity)] = company_id
        team = rng.choice([t for t in self.teams if t[0] == company_id])
        user_id = rng.choice(team[2]) if rng.random() > 0.05 else None
        create_date = self.now - timedelta(seconds=rng.randrange(YEARS * 365 * 86400))
        visits, outcome, closed = self.stage_history(create_date)
        is_lead = rng.random() < 0.35 and outcome != "won"
        if is_lead:
            visits = visits[:1]
        expected_revenue = round(math.exp(rng.gauss(9, 1.2)), -2)
        probability = {"won": 100, "lost": 0}.get(
            outcome, OPEN_PROBABILITY[min(len(visits), 4) - 1]
        )
        country_id = self.countries[identity.country]
        email_normalized = email_normalize(email) if email else None
        code, phone_code = self.country_phone[country_id]
        sanitized = sanitize_phone(phone, code, phone_code) if phone else None
        date_open = create_date if user_id else None
        return {
            "visits": visits,
            "outcome": outcome,
            "user_id": user_id,
            "values": (
                f"{company or contact} — {rng.choice(DEAL_KINDS)}",
                "lead" if is_lead else "opportunity",
                contact,
                company,
                email or None,
                email_normalized or None,
                iap_tools.mail_prepare_for_domain_search(email_normalized)
                if email_normalized
                else None,
                "correct" if email_normalized else ("incorrect" if email else None),
                phone or None,
                sanitized or None,
                "correct" if sanitized else ("incorrect" if phone else None),
                country_id,
                company_id,
                team[1],
                user_id,
                visits[-1][0],
                visits[-1][1],
                create_date,
                # Last edit of the deal: its last stage change, or its closing.
                closed or visits[-1][1],
                date_open,
                0 if date_open else None,
                closed,
                abs((closed - create_date).days) if closed else None,
                outcome != "lost",
                probability,
                probability,
                expected_revenue,
                round(expected_revenue * probability / 100.0, 2),
                rng.choice(self.lost_reasons) if outcome == "lost" else None,
                rng.choice(self.sources) if rng.random() < 0.7 else None,
                rng.choice(self.mediums) if rng.random() < 0.7 else None,
                rng.choice(self.campaigns) if rng.random() < 0.4 else None,
                str(rng.choices([0, 1, 2, 3], weights=[50, 25, 15, 10])[0]),
                (create_date + timedelta(days=rng.randrange(20, 120))).date(),
            ),
        }

    def insert_leads(self, rows):
        values = [row["values"] for row in rows]
        ids = execute_values(
            self.cr._obj,
            """INSERT INTO crm_lead (name, type, contact_name, partner_name, email_from,
                email_normalized, email_domain_criterion, email_state, phone, phone_sanitized,
                phone_state, country_id, company_id, team_id, user_id, stage_id,
                date_last_stage_update, create_date, write_date, date_open, day_open,
                date_closed, day_close, active, probability, automated_probability,
                expected_revenue, prorated_revenue, lost_reason_id, source_id, medium_id,
                campaign_id, priority, date_deadline, create_uid, write_uid, color,
                recurring_revenue_monthly, recurring_revenue_monthly_prorated)
            VALUES %s RETURNING id""",
            values,
            template="(" + ",".join(["%s"] * len(values[0])) + ",1,1,0,0,0)",
            page_size=len(values),
            fetch=True,
        )
        return [row[0] for row in ids]

    def insert_history(self, rows, lead_ids):
        rng = self.rng
        messages, tracking, tags, followers, activities = [], [], [], [], []
        # The lead's salesperson writes its notes, moves its stages and does its activities.
        author_of = {}
        for row, lead_id in zip(rows, lead_ids):
            author_of[lead_id] = self.partner_of_user.get(row["user_id"])
            visits = row["visits"]
            for (old_stage, _), (new_stage, entered) in itertools.pairwise(visits):
                messages.append(
                    (
                        lead_id,
                        "notification",
                        self.subtype_stage,
                        entered,
                        "",
                        (old_stage, new_stage),
                    )
                )
            # Notes, then done activities, in the days after the lead came in.
            for counts, weights, days, kind, subtype, body, marker in (
                (
                    [0, 1, 2, 3],
                    [40, 30, 20, 10],
                    30,
                    "comment",
                    self.subtype_comment,
                    "<p>Call notes</p>",
                    None,
                ),
                (
                    [0, 1, 2, 4],
                    [30, 30, 25, 15],
                    40,
                    "notification",
                    self.subtype_activity,
                    "<p>Done</p>",
                    "activity",
                ),
            ):
                for _ in range(rng.choices(counts, weights=weights)[0]):
                    when = visits[0][1] + timedelta(hours=rng.randrange(1, 24 * days))
                    messages.append((lead_id, kind, subtype, min(when, self.now), body, marker))
            for tag in rng.sample(self.tags, rng.choice([0, 0, 1, 1, 2, 3])):
                tags.append((lead_id, tag))
            if row["user_id"]:
                followers.append(("crm.lead", lead_id, self.partner_of_user[row["user_id"]]))
                if row["outcome"] == "open" and rng.random() < 0.6:
                    deadline = (self.now + timedelta(days=rng.randrange(-10, 21))).date()
                    activities.append(
                        (
                            self.model_id,
                            "crm.lead",
                            lead_id,
                            rng.choice(self.activity_types),
                            row["user_id"],
                            deadline,
                            "Follow up",
                            row["values"][0],
                            self.now,
                            self.now,
                        )
                    )
        message_ids = execute_values(
            self.cr._obj,
            """INSERT INTO mail_message (model, res_id, message_type, subtype_id, date, body,
                create_date, write_date, create_uid, write_uid, author_id)
            VALUES %s RETURNING id""",
            [(("crm.lead", *m[:5], m[3], m[3], 1, 1, author_of[m[0]])) for m in messages],
            page_size=len(messages) or 1,
            fetch=True,
        )
        for message, (message_id,) in zip(messages, message_ids):
            if isinstance(message[5], tuple):
                tracking.append((self.stage_field_id, message[5][0], message[5][1], message_id))
        if tracking:
            execute_values(
                self.cr._obj,
                """INSERT INTO mail_tracking_value (field_id, old_value_integer, new_value_integer,
                    mail_message_id, create_date, write_date, create_uid, write_uid)
                VALUES %s""",
                [(*t, self.now, self.now, 1, 1) for t in tracking],
                page_size=len(tracking),
            )
        self.cr.execute(
            "UPDATE mail_message SET mail_activity_type_id = %s WHERE id = ANY(%s)",
            [
                self.activity_types[0],
                [mid for m, (mid,) in zip(messages, message_ids) if m[5] == "activity"],
            ],
        )
        if tags:
            execute_values(
                self.cr._obj,
                "INSERT INTO crm_tag_rel (lead_id, tag_id) VALUES %s",
                tags,
                page_size=len(tags),
            )
        if followers:
            execute_values(
                self.cr._obj,
                "INSERT INTO mail_followers (res_model, res_id, partner_id) VALUES %s",
                followers,
                page_size=len(followers),
            )
        if activities:
            execute_values(
                self.cr._obj,
                """INSERT INTO mail_activity (res_model_id, res_model, res_id, activity_type_id,
                    user_id, date_deadline, summary, res_name, create_date, write_date,
                    create_uid, write_uid, automated, active)
                VALUES %s""",
                [(*a, 1, 1, False, True) for a in activities],
                page_size=len(activities),
            )
        return len(messages), len(activities)

    def run(self):
        self.build_reference_data()
        identities, truth = [], []
        counts = {"leads": 0, "messages": 0, "activities": 0}
        next_report = self.total // 10 or 1
        while counts["leads"] < self.total:
            size = min(BATCH, self.total - counts["leads"])
            picked = [self.pick_identity(identities) for _ in range(size)]
            rows = [self.lead_row(identity, typed) for _, identity, typed in picked]
            lead_ids = self.insert_leads(rows)
            truth.extend(zip(lead_ids, (identity_id for identity_id, _, _ in picked)))
            messages, activities = self.insert_history(rows, lead_ids)
            counts["leads"] += size
            counts["messages"] += messages
            counts["activities"] += activities
            if counts["leads"] >= next_report or counts["leads"] == self.total:
                print(
                    f"progress: {counts['leads']}/{self.total} leads "
                    f"({time.monotonic() - self.started:.0f} s)",
                    flush=True,
                )
                next_report += self.total // 10 or 1
        execute_values(
            self.cr._obj, "INSERT INTO bench_lead_identity VALUES %s", truth, page_size=BATCH
        )
        # The module's duplicate match keys, as its install computes them on existing leads.
        keys_started = time.monotonic()
        self.env["crm.lead"]._fill_match_keys()
        print(f"generated_match_keys_time: {time.monotonic() - keys_started:.1f} s")
        # The stage visits, as its install rebuilds them from crm's tracking of existing
        # leads (the history above is written in bulk, beside the ORM's writes).
        visits_started = time.monotonic()
        self.env["crm.lead.stage.visit"]._rebuild_stage_visits()
        print(f"generated_stage_visits_time: {time.monotonic() - visits_started:.1f} s")
        self.cr.execute(
            "ANALYZE crm_lead; ANALYZE mail_message; ANALYZE mail_activity; "
            "ANALYZE crm_lead_stage_visit"
        )
        self.env.invalidate_all()
        duplicates = len(truth) - len(identities)
        print(f"generated_leads: {counts['leads']} leads")
        print(f"generated_identities: {len(identities)} identities")
        print(f"generated_duplicate_leads: {duplicates} leads")
        print(f"generated_messages: {counts['messages']} messages")
        print(f"generated_activities: {counts['activities']} activities")
        print(f"generation_time: {time.monotonic() - self.started:.1f} s")


def sanitize_phone(number, country_code, phone_code):
    """phone_sanitized as mail.thread.phone computes it: E.164, or nothing when invalid."""
    try:
        return phone_validation.phone_format(
            number, country_code, phone_code, force_format="E164", raise_exception=True
        )
    except Exception:  # phone_format raises UserError or phonenumbers errors
        return None


def verify(env, sample_size=300):
    """Recompute crm's stored fields through the ORM on a sample; the stored ones must agree."""
    leads = (
        env["crm.lead"]
        .with_context(active_test=False)
        .search([], limit=sample_size, order="id desc")
    )
    stored = {
        lead.id: (lead.email_normalized, lead.phone_sanitized, lead.prorated_revenue)
        for lead in leads
    }
    env.invalidate_all()
    mismatches = 0
    for lead in leads:
        recomputed = (
            email_normalize(lead.email_from) if lead.email_from else False,
            lead._phone_format(fname="phone") or False,
            round((lead.expected_revenue or 0.0) * (lead.probability or 0) / 100.0, 2),
        )
        if tuple(v or False for v in stored[lead.id]) != recomputed:
            mismatches += 1
            print(f"mismatch: lead {lead.id} stored {stored[lead.id]} recomputed {recomputed}")
    print(f"verify_sample: {len(leads)} leads")
    print(f"verify_mismatches: {mismatches} leads")
    return mismatches == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("database")
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--verify", action="store_true")
    args = parser.parse_args()
    odoo.tools.config.parse_config(["-c", args.config, "-d", args.database, "--log-level=warn"])
    with Registry(args.database).cursor() as cr:
        env = api.Environment(
            cr, SUPERUSER_ID, {"tracking_disable": True, "mail_create_nolog": True}
        )
        if args.verify:
            sys.exit(0 if verify(env) else 1)
        print(f"generating: {args.leads} leads, seed {args.seed}", flush=True)
        Generator(env, args.leads, args.seed).run()


if __name__ == "__main__":
    main()
