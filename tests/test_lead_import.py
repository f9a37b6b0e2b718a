import csv
import io

from odoo.tests import tagged

from .common import DuplicatesCommon

FIELDS = ["name", "email_from", "phone", "contact_name", "partner_name", "description", "tag_ids"]
OPTIONS = {"has_headers": True, "quoting": '"', "separator": ",", "encoding": "utf-8"}


@tagged("duplicates", "post_install", "-at_install")
class TestImportDuplicates(DuplicatesCommon):
    """Importing leads compares each row with the leads of its company and with the rows
    before it, by the duplicate rules."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["base.automation"].search([]).active = False
        cls.env["crm.tag"].create({"name": "Fair"})
        cls.existing = cls.env["crm.lead"].create(
            {
                "name": "Existing Acme deal",
                "type": "opportunity",
                "contact_name": "John Smith",
                "partner_name": "Acme 12 Inc.",
                "email_from": "john.smith12@acme12.example.com",
                "user_id": cls.user_salesman_all.id,
                "team_id": cls.sales_team.id,
            }
        )
        cls.rows = [
            # 1: the existing lead, typed another way, with a phone it lacks
            [
                "Acme again",
                " John.Smith12@ACME12.example.com ",
                "+1 202 555 0123",
                "John Smith",
                "ACME 12",
                "Met at the fair",
                "Fair",
            ],
            # 2: a new customer
            ["Globex", "ana@globex.example.com", "", "Ana Lima", "Globex", "", ""],
            # 3: the new customer again, later in the file
            ["Globex twice", "ana@globex.example.com", "", "Ana Lima", "Globex", "", ""],
        ]

    def _import(self, mode=None, dryrun=False, rows=None, user=None):
        data = io.StringIO()
        writer = csv.writer(data)
        writer.writerow(FIELDS)
        writer.writerows(rows or self.rows)
        env = self.env(user=user) if user else self.env
        wizard = env["base_import.import"].create(
            {
                "res_model": "crm.lead",
                "file": data.getvalue().encode(),
                "file_type": "text/csv",
                "file_name": "leads.csv",
            }
        )
        options = dict(OPTIONS, **({"crm_import_duplicates": mode} if mode else {}))
        return wizard.execute_import(FIELDS, FIELDS, options, dryrun=dryrun)

    def _imported(self):
        return self.env["crm.lead"].search(
            [("name", "in", ["Acme again", "Globex", "Globex twice"])]
        )

    def test_review_creates_every_row_and_lists_the_duplicates(self):
        result = self._import("review")
        self.assertFalse(result["messages"])
        self.assertEqual(len(self._imported()), 3)
        clusters = self.env["crm.lead.duplicate.cluster"].search([("state", "=", "open")])
        grouped = {frozenset(cluster.lead_ids.mapped("name")) for cluster in clusters}
        self.assertIn(frozenset({"Existing Acme deal", "Acme again"}), grouped)
        self.assertIn(frozenset({"Globex", "Globex twice"}), grouped)

    def test_merge_fills_empty_fields_and_never_overwrites(self):
        result = self._import("merge")
        self.assertFalse(result["messages"])
        self.assertEqual(self._imported().mapped("name"), ["Globex"])
        self.assertIn(self.existing.id, result["ids"])
        self.assertEqual(self.existing.phone, "+1 202 555 0123")
        self.assertEqual(self.existing.name, "Existing Acme deal")
        self.assertEqual(self.existing.user_id, self.user_salesman_all)
        self.assertEqual(self.existing.tag_ids.mapped("name"), ["Fair"])
        notes = self.existing.message_ids.mapped("body")
        self.assertTrue(any("Met at the fair" in (body or "") for body in notes))

    def test_skip_leaves_the_existing_lead_alone(self):
        self._import("skip")
        self.assertEqual(self._imported().mapped("name"), ["Globex"])
        self.assertFalse(self.existing.phone)
        self.assertFalse(self.existing.tag_ids)

    def test_test_button_reports_the_matching_rows(self):
        result = self._import("merge", dryrun=True)
        self.assertEqual(len(result["messages"]), 1)
        message = result["messages"][0]
        self.assertEqual(message["type"], "info")
        self.assertIn("2 rows match", message["message"])
        self.assertIn("row 1: Existing Acme deal", message["message"])
        self.assertIn("row 3: row 2", message["message"])
        self.env.invalidate_all()  # the Test button rolled the import back
        self.assertFalse(self._imported())
        self.assertFalse(self.existing.phone)

    def test_failed_import_leaves_nothing_half_merged(self):
        rows = [*self.rows, ["Broken", "x@example.com", "", "", "", "", "No such tag, really"]]
        broken_fields = [*FIELDS[:-1], "stage_id"]
        data = io.StringIO()
        writer = csv.writer(data)
        writer.writerow(broken_fields)
        writer.writerows(rows)
        wizard = self.env["base_import.import"].create(
            {"res_model": "crm.lead", "file": data.getvalue().encode(), "file_type": "text/csv"}
        )
        result = wizard.execute_import(
            broken_fields, broken_fields, dict(OPTIONS, crm_import_duplicates="merge")
        )
        self.assertTrue(any(message["type"] == "error" for message in result["messages"]))
        self.env.invalidate_all()  # load() rolled the import back
        self.assertFalse(self._imported())
        self.assertFalse(self.existing.phone)
        self.assertFalse(self.existing.tag_ids)

    def test_without_the_choice_rows_are_created_as_crm_does(self):
        self._import()
        self.assertEqual(len(self._imported()), 3)
        self.assertFalse(self.existing.phone)

    def test_a_lead_the_importer_cannot_see_is_not_matched(self):
        self.existing.user_id = self.user_salesman_all
        self._import("merge", user=self.user_salesman_own)
        self.assertEqual(len(self._imported()), 2)  # row 3 still merges into row 2
        self.assertFalse(self.existing.phone)
