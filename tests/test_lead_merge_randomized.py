import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo import fields
from odoo.tests import tagged

from .common import DuplicatesCommon

_logger = logging.getLogger(__name__)

MERGE_EXAMPLES = 50

# One lead of a random cluster: its kind, outcome and the history hanging on it.
lead_strategy = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["lead", "opportunity"]),
        "outcome": st.sampled_from(["open", "open", "open", "lost", "won"]),
        "stage": st.integers(0, 3),
        "messages": st.lists(st.booleans(), max_size=3),  # True: with a subject
        "attachments": st.integers(0, 2),
        "activities": st.integers(0, 2),
        "followers": st.sets(st.integers(0, 3), max_size=3),
        "tags": st.sets(st.integers(0, 2), max_size=2),
        "events": st.integers(0, 1),
    }
)
cluster_strategy = st.lists(lead_strategy, min_size=2, max_size=6)


@tagged("merge", "post_install", "-at_install")
class TestMergeRandomized(DuplicatesCommon):
    """Random clusters of leads with random history, merged into their default record:
    nothing that existed is lost, nothing is duplicated."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.open_stages = cls.stage_new | cls.stage_qualified | cls.stage_proposal
        cls.open_stages |= cls.stage_negotiation
        cls.watchers = cls.env["res.partner"].create(
            [{"name": f"Watcher {index}"} for index in range(4)]
        )
        cls.tags = cls.env["crm.tag"].create([{"name": f"Tag {index}"} for index in range(3)])
        cls.lost_reason = cls.env["crm.lost.reason"].create({"name": "Randomized"})
        cls.lead_model_id = cls.env["ir.model"]._get_id("crm.lead")
        cls.cases = 0

    @classmethod
    def tearDownClass(cls):
        # The number of randomized cases, for the test log (and the note).
        _logger.info("randomized merge cases: %s", cls.cases)
        super().tearDownClass()

    def _make(self, spec, index, won_taken):
        won = spec["outcome"] == "won" and not won_taken
        lead = self._john(
            name=f"Random {index}",
            type="opportunity" if won else spec["type"],
            stage_id=self.stage_won.id if won else self.open_stages[spec["stage"]].id,
            tag_ids=[(6, 0, [self.tags[i].id for i in spec["tags"]])],
        )
        for number, with_subject in enumerate(spec["messages"]):
            lead.message_post(
                body=f"Note {number}", subject=f"Call {number}" if with_subject else False
            )
        self.env["ir.attachment"].create(
            [
                {
                    "name": f"file-{number}.txt",
                    "res_model": "crm.lead",
                    "res_id": lead.id,
                    "raw": b"x",
                }
                for number in range(spec["attachments"])
            ]
        )
        for number in range(spec["activities"]):
            lead.activity_schedule("mail.mail_activity_data_todo", summary=f"Todo {number}")
        lead.message_subscribe(partner_ids=[self.watchers[i].id for i in spec["followers"]])
        self.env["calendar.event"].create(
            [
                {
                    "name": f"Meeting {number}",
                    "opportunity_id": lead.id,
                    "res_model_id": self.lead_model_id,
                    "res_id": lead.id,
                    "start": fields.Datetime.now(),
                    "stop": fields.Datetime.now(),
                }
                for number in range(spec["events"])
            ]
        )
        if spec["outcome"] == "lost":
            lead.action_set_lost(lost_reason_id=self.lost_reason.id)
        return lead, won

    def _followers(self, leads):
        return self.env["mail.followers"].search(
            [("res_model", "=", "crm.lead"), ("res_id", "in", leads.ids)]
        )

    def _snapshot(self, leads):
        Message, Attachment = self.env["mail.message"], self.env["ir.attachment"]
        return {
            "messages": set(
                Message.search([("model", "=", "crm.lead"), ("res_id", "in", leads.ids)]).ids
            ),
            "attachments": set(
                Attachment.search([("res_model", "=", "crm.lead"), ("res_id", "in", leads.ids)]).ids
            ),
            "activities": set(
                self.env["mail.activity"]
                .search([("res_model", "=", "crm.lead"), ("res_id", "in", leads.ids)])
                .ids
            ),
            "events": set(
                self.env["calendar.event"].search([("opportunity_id", "in", leads.ids)]).ids
            ),
            "followers": set(self._followers(leads).partner_id.ids),
            "tags": set(leads.tag_ids.ids),
        }

    def _record_state(self, lead_ids):
        """Everything of these records an undo must give back, as the database holds it:
        the row, and each message (its subject), attachment (its name), activity, meeting,
        follower (with its subtypes) and tag hanging on it."""
        self.env.flush_all()

        def rows(query, *params):
            self.env.cr.execute(query, params)
            return sorted(self.env.cr.fetchall())

        ids = tuple(lead_ids)
        return {
            "leads": rows("SELECT id, to_jsonb(l) FROM crm_lead l WHERE id IN %s", ids),
            "messages": rows(
                "SELECT id, res_id, subject FROM mail_message "
                "WHERE model = 'crm.lead' AND res_id IN %s",
                ids,
            ),
            "attachments": rows(
                "SELECT id, res_id, name FROM ir_attachment "
                "WHERE res_model = 'crm.lead' AND res_id IN %s",
                ids,
            ),
            "activities": rows(
                "SELECT id, res_id FROM mail_activity WHERE res_model = 'crm.lead' "
                "AND res_id IN %s",
                ids,
            ),
            "events": rows(
                "SELECT id, res_id, opportunity_id FROM calendar_event "
                "WHERE opportunity_id IN %s OR (res_model = 'crm.lead' AND res_id IN %s)",
                ids,
                ids,
            ),
            "followers": rows(
                """SELECT f.res_id, f.partner_id,
                          array_agg(r.mail_message_subtype_id ORDER BY 1)
                     FROM mail_followers f
                LEFT JOIN mail_followers_mail_message_subtype_rel r ON r.mail_followers_id = f.id
                    WHERE f.res_model = 'crm.lead' AND f.res_id IN %s
                 GROUP BY f.id""",
                ids,
            ),
            "tags": rows("SELECT lead_id, tag_id FROM crm_tag_rel WHERE lead_id IN %s", ids),
        }

    @staticmethod
    def _of(kind, row):
        """The leads a row of _record_state() belongs to."""
        if kind in ("leads", "followers", "tags"):
            return {row[0]}
        if kind == "events":
            return {row[1], row[2]}
        return {row[1]}

    def _merge_through(self, path, leads):
        """Merges `leads` the way a user does on `path`; returns the records it merged."""
        context = {"active_model": "crm.lead", "active_ids": leads.ids}
        if path == "duplicates_centre":
            wizard = self.env["crm.lead.merge.cluster"].with_context(**context).create({})
            wizard.action_merge()
            return leads
        if path == "action_menu":
            # crm's wizard takes the selected records that are neither won nor lost.
            to_merge = leads.filtered(lambda lead: lead.active and lead.probability < 100)
            if len(to_merge) > 1:
                wizard = self.env["crm.merge.opportunity"].with_context(**context).create({})
                self.assertEqual(wizard.opportunity_ids, to_merge)
                wizard.action_merge()
            return to_merge
        if path == "convert":
            lead = leads[0]  # an open lead, the one the salesperson converts
            wizard = (
                self.env["crm.lead2opportunity.partner"]
                .with_context(active_model="crm.lead", active_id=lead.id, active_ids=lead.ids)
                .create({"name": "merge", "duplicated_lead_ids": [(6, 0, leads.ids)]})
            )
            wizard.action_apply()
            return leads
        # crm's deduplication merges the open records of the same customer, won ones aside.
        to_merge = leads.filtered(lambda lead: lead.active and not lead.stage_id.is_won)
        wizard = (
            self.env["crm.lead2opportunity.partner.mass"]
            .with_context(**context)
            .create({"name": "convert", "deduplicate": True, "user_ids": [(6, 0, [])]})
        )
        wizard.action_mass_convert()
        return to_merge

    @settings(
        max_examples=MERGE_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        cluster=cluster_strategy,
        path=st.sampled_from(["duplicates_centre", "action_menu", "convert", "mass_convert"]),
    )
    def test_merge_then_undo_loses_and_duplicates_nothing(self, cluster, path):
        type(self).cases += 1
        with self.env.cr.savepoint(flush=True) as savepoint:
            leads, won_taken = self.env["crm.lead"], False
            if path == "convert":
                cluster = [{**cluster[0], "type": "lead", "outcome": "open"}, *cluster[1:]]
            for index, spec in enumerate(cluster):
                lead, won = self._make(spec, index, won_taken)
                leads |= lead
                won_taken = won_taken or won
            leads = leads.with_context(active_test=False)
            self.env.flush_all()
            self.env.cr.precommit.run()  # tracking of the records' history
            before = self._snapshot(leads)
            state_before = self._record_state(leads.ids)
            merged = self._merge_through(path, leads)
            if len(merged) < 2:
                savepoint.rollback()
                return
            self.env.flush_all()
            self.env.invalidate_all()
            master = merged.exists()
            self.assertEqual(len(master), 1, path)
            after = self._snapshot(leads.exists())

            self.assertLessEqual(before["messages"], after["messages"])
            for kind in ("attachments", "activities", "events", "followers", "tags"):
                self.assertEqual(after[kind], before[kind], (path, kind))
            followers = self._followers(master)
            self.assertEqual(len(followers), len(followers.partner_id), "a follower twice")
            if won_taken and path not in ("mass_convert", "action_menu"):
                self.assertTrue(master.stage_id.is_won)

            last_message_id = max(self.env["mail.message"].search([], limit=1).ids)
            master.action_undo_merge()
            self.env.flush_all()
            self.env.invalidate_all()
            others = (merged - master).ids
            state_after = self._record_state(others)
            # The undo's own note on each record it brings back is news of its own.
            state_after["messages"] = [
                row for row in state_after["messages"] if row[0] <= last_message_id
            ]
            merged_before = {
                kind: [row for row in rows if self._of(kind, row) & set(others)]
                for kind, rows in state_before.items()
            }
            for kind, rows in merged_before.items():
                self.assertEqual(state_after[kind], rows, (path, kind))
            self.assertFalse(master.undoable_merge_log_id)
            savepoint.rollback()
        self.env.invalidate_all()
