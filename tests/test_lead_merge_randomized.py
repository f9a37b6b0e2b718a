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

    @settings(
        max_examples=MERGE_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(cluster=cluster_strategy)
    def test_merge_loses_and_duplicates_nothing(self, cluster):
        type(self).cases += 1
        with self.env.cr.savepoint(flush=True) as savepoint:
            leads, won_taken = self.env["crm.lead"], False
            for index, spec in enumerate(cluster):
                lead, won = self._make(spec, index, won_taken)
                leads |= lead
                won_taken = won_taken or won
            self.env.flush_all()
            before = self._snapshot(leads.with_context(active_test=False))
            master = leads._merge_into(leads._merge_default_master())
            self.env.flush_all()
            self.env.invalidate_all()
            after = self._snapshot(master)

            self.assertEqual(leads.exists(), master)
            self.assertLessEqual(before["messages"], after["messages"])
            # The merge adds the summary and, perhaps, tracking of what it changed.
            self.assertTrue(1 <= len(after["messages"] - before["messages"]) <= 3)
            for kind in ("attachments", "activities", "events", "followers", "tags"):
                self.assertEqual(after[kind], before[kind], kind)
            followers = self._followers(master)
            self.assertEqual(len(followers), len(followers.partner_id), "a follower twice")
            if won_taken:
                self.assertTrue(master.stage_id.is_won)
            savepoint.rollback()
        self.env.invalidate_all()
