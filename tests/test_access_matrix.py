from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import PipelineOptimizerCommon

# What each role may do on each model of the module: r(ead), w(rite), c(reate), u(nlink).
# Roles: an internal user without sales rights, both kinds of salesperson, the sales
# administrator, and an all-documents salesperson of another company.
ACCESS = {
    "crm.stage": {"internal": "r", "own": "r", "all": "r", "manager": "rwcu", "other": "r"},
    "crm.lead.scoring.criterion": {
        "internal": "",
        "own": "r",
        "all": "r",
        "manager": "rwcu",
        "other": "r",
    },
    "crm.lead.scoring.factor": {"internal": "", "own": "", "all": "", "manager": "r", "other": ""},
    "crm.team.revenue.target": {
        "internal": "",
        "own": "r",
        "all": "r",
        "manager": "rwcu",
        "other": "r",
    },
    "crm.lead.duplicate.cluster": {
        "internal": "",
        "own": "",
        "all": "",
        "manager": "rwcu",
        "other": "",
    },
    "crm.lead.duplicate.exclusion": {
        "internal": "",
        "own": "rc",
        "all": "rc",
        "manager": "rwcu",
        "other": "rc",
    },
    "crm.lead.merge.cluster": {
        "internal": "",
        "own": "rwc",
        "all": "rwc",
        "manager": "rwc",
        "other": "rwc",
    },
    "crm.lead.duplicate.scan": {
        "internal": "",
        "own": "",
        "all": "",
        "manager": "rwc",
        "other": "",
    },
}
OPERATIONS = {"r": "read", "w": "write", "c": "create", "u": "unlink"}


@tagged("post_install", "-at_install")
class TestAccessMatrix(PipelineOptimizerCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_internal = mail_new_test_user(
            cls.env, login="pipeline_internal", name="Ines Internal", groups="base.group_user"
        )
        cls.roles = {
            "internal": cls.user_internal,
            "own": cls.user_salesman_own,
            "all": cls.user_salesman_all,
            "manager": cls.user_sales_manager,
            "other": cls.user_company_2,
        }
        team_2 = cls.env["crm.team"].create({"name": "Team 2", "company_id": cls.company_2.id})
        lead_2 = cls.env["crm.lead"].create(
            {"name": "Company 2 lead", "company_id": cls.company_2.id, "team_id": False}
        )
        lead_2b = cls.env["crm.lead"].create(
            {"name": "Company 2 lead b", "company_id": cls.company_2.id, "team_id": False}
        )
        # One record of company 2 for each model with company data.
        cls.company_2_records = {
            "crm.lead.scoring.criterion": cls.env["crm.lead.scoring.criterion"].create(
                {"name": "Company 2 criterion", "points": 5, "company_id": cls.company_2.id}
            ),
            "crm.team.revenue.target": cls.env["crm.team.revenue.target"].create(
                {
                    "team_id": team_2.id,
                    "date_from": "2026-01-01",
                    "date_to": "2026-12-31",
                    "amount": 1000,
                }
            ),
            "crm.lead.duplicate.exclusion": cls.env["crm.lead.duplicate.exclusion"]._exclude(
                lead_2 | lead_2b
            ),
        }
        cls.env.cr.execute(
            "INSERT INTO crm_lead_duplicate_cluster (company_id, lead_count, confidence, "
            "reason_bits, state) VALUES (%s, 2, 95, 1, 'open') RETURNING id",
            (cls.company_2.id,),
        )
        cluster_2 = cls.env["crm.lead.duplicate.cluster"].browse(cls.env.cr.fetchone()[0])
        cls.company_2_records["crm.lead.duplicate.cluster"] = cluster_2

    def test_model_rights_of_every_role(self):
        checked = 0
        for model, rights in ACCESS.items():
            for role, allowed in rights.items():
                Model = self.env[model].with_user(self.roles[role])
                for letter, operation in OPERATIONS.items():
                    with self.subTest(model=model, role=role, operation=operation):
                        self.assertEqual(Model.has_access(operation), letter in allowed)
                    checked += 1
        self.assertEqual(checked, len(ACCESS) * 5 * 4)

    def test_records_of_another_company_stay_invisible(self):
        for model, record in self.company_2_records.items():
            for role in ("own", "all", "manager"):
                user = self.roles[role]
                if not self.env[model].with_user(user).has_access("read"):
                    continue
                with self.subTest(model=model, role=role):
                    self.assertFalse(
                        self.env[model].with_user(user).search([("id", "=", record.id)]),
                        f"{role} sees a {model} of another company",
                    )
                    with self.assertRaises(AccessError):
                        record.with_user(user).check_access("read")
            other = self.roles["other"]
            if self.env[model].with_user(other).has_access("read"):
                with self.subTest(model=model, role="other"):
                    self.assertTrue(record.with_user(other).has_access("read"))

    def test_dashboard_scope_of_every_role(self):
        expected = {"own": "own", "all": "own", "manager": "company", "other": "own"}
        for role, scope in expected.items():
            with self.subTest(role=role):
                data = self.env["crm.pipeline.dashboard"].with_user(self.roles[role])
                self.assertEqual(data.get_dashboard_data("month")["scope"], scope)
        with self.assertRaises(AccessError):
            self.env["crm.pipeline.dashboard"].with_user(self.user_internal).get_dashboard_data()
