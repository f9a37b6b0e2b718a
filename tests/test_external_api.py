import json
from xmlrpc.client import Fault

from odoo.tests import HttpCase, tagged

from .common import PipelineOptimizerCommon


@tagged("external_api", "post_install", "-at_install")
class TestExternalApiBadInput(PipelineOptimizerCommon, HttpCase):
    """Bad input through the real external APIs (XML-RPC and JSON-RPC over HTTP, as an
    integration would send it): each call gets a clear error and changes nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lead = cls.env["crm.lead"].create(
            {
                "name": "API deal",
                "type": "opportunity",
                "team_id": cls.sales_team.id,
                "user_id": cls.user_salesman_own.id,
                "employee_count": 80,
            }
        )
        cls.lead_company_2 = cls.env["crm.lead"].create(
            {"name": "API deal of company 2", "company_id": cls.company_2.id, "team_id": False}
        )

    def _xmlrpc(self, user, model, method, *args, **kwargs):
        uid = self.xmlrpc_common.authenticate(self.env.cr.dbname, user.login, user.login, {})
        self.assertEqual(uid, user.id)
        return self.xmlrpc_object.execute_kw(
            self.env.cr.dbname, uid, user.login, model, method, list(args), kwargs
        )

    def _jsonrpc_response(self, user, model, method, *args, **kwargs):
        """The decoded answer of an `execute_kw` call through /jsonrpc."""
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {
                "service": "object",
                "method": "execute_kw",
                "args": [
                    self.env.cr.dbname,
                    user.id,
                    user.login,
                    model,
                    method,
                    list(args),
                    kwargs,
                ],
            },
        }
        response = self.url_open(
            "/jsonrpc", data=json.dumps(payload), headers={"Content-Type": "application/json"}
        )
        return response.json()

    def _jsonrpc(self, user, model, method, *args, **kwargs):
        """The error of a JSON-RPC call as (exception name, message)."""
        body = self._jsonrpc_response(user, model, method, *args, **kwargs)
        self.assertIn("error", body, f"{model}.{method} was accepted: {body.get('result')}")
        return body["error"]["data"]["name"], body["error"]["data"]["message"]

    def _assert_fault(self, message, user, model, method, *args, **kwargs):
        with self.assertRaises(Fault) as caught:
            self._xmlrpc(user, model, method, *args, **kwargs)
        self.assertIn(message, caught.exception.faultString)

    def test_wrong_type_for_a_qualification_fact(self):
        self._assert_fault(
            "“lots” is not a valid value for Employees",
            self.user_salesman_own,
            "crm.lead",
            "write",
            [self.lead.id],
            {"employee_count": "lots", "is_budget_confirmed": True},
        )
        name, message = self._jsonrpc(
            self.user_salesman_own,
            "crm.lead",
            "create",
            [{"name": "From a web form", "purchase_timeline": "someday"}],
        )
        self.assertEqual(name, "odoo.exceptions.ValidationError")
        self.assertIn("“someday” is not a valid value", message)
        self.assertFalse(self.env["crm.lead"].search([("name", "=", "From a web form")]))
        self.lead.invalidate_recordset()
        self.assertEqual(self.lead.employee_count, 80)
        self.assertFalse(self.lead.is_budget_confirmed, "nothing of the call was applied")

    def test_criterion_with_an_invalid_condition_or_missing_name(self):
        Criterion = self.env["crm.lead.scoring.criterion"]
        before = Criterion.search_count([])
        name, message = self._jsonrpc(
            self.user_sales_manager,
            "crm.lead.scoring.criterion",
            "create",
            [{"name": "API criterion", "points": 10, "domain": "[('no_such_field', '=', 1)]"}],
        )
        self.assertEqual(name, "odoo.exceptions.ValidationError")
        self.assertIn("API criterion", message)
        name, _message = self._jsonrpc(
            self.user_sales_manager, "crm.lead.scoring.criterion", "create", [{"points": 10}]
        )
        self.assertEqual(name, "odoo.exceptions.ValidationError")
        self.assertEqual(Criterion.search_count([]), before)

    def test_salesperson_cannot_configure_scoring(self):
        name, _message = self._jsonrpc(
            self.user_salesman_all,
            "crm.lead.scoring.criterion",
            "create",
            [{"name": "Mine", "points": 100}],
        )
        self.assertEqual(name, "odoo.exceptions.AccessError")
        self.assertFalse(self.env["crm.lead.scoring.criterion"].search([("name", "=", "Mine")]))

    def test_stage_duration_out_of_range(self):
        self._assert_fault(
            self.stage_new.name,
            self.user_sales_manager,
            "crm.stage",
            "write",
            [self.stage_new.id],
            {"expected_days_min": 9, "expected_days_max": 2},
        )
        self.stage_new.invalidate_recordset()
        self.assertNotEqual(
            (self.stage_new.expected_days_min, self.stage_new.expected_days_max), (9, 2)
        )

    def test_merge_with_a_lead_of_another_company(self):
        wizard_values = {
            "lead_ids": [(6, 0, [self.lead.id, self.lead_company_2.id])],
            "master_id": self.lead.id,
        }
        name, _message = self._jsonrpc(
            self.user_salesman_all, "crm.lead.merge.cluster", "create", [wizard_values]
        )
        self.assertEqual(name, "odoo.exceptions.AccessError")
        # Even as an administrator of both companies, a merge never crosses companies.
        admin = self.env.ref("base.user_admin")
        admin.company_ids |= self.company_2
        wizard = self.env["crm.lead.merge.cluster"].with_user(admin).create(wizard_values)
        name, message = self._jsonrpc(admin, "crm.lead.merge.cluster", "action_merge", [wizard.id])
        self.assertEqual(name, "odoo.exceptions.UserError")
        self.assertIn("compan", message)
        self.assertTrue(self.lead.exists() and self.lead_company_2.exists())
        self.assertTrue(self.lead.active and self.lead_company_2.active)

    def test_dashboard_filters_of_the_wrong_type(self):
        Dashboard = "crm.pipeline.dashboard"
        for kwargs, expected in (
            ({"period": "decade"}, "Unknown period"),
            ({"period": ["month"]}, "Unknown period"),
            ({"team_id": "abc"}, "must be a record id"),
            ({"user_id": [1]}, "must be a record id"),
        ):
            with self.subTest(**kwargs):
                name, message = self._jsonrpc(
                    self.user_sales_manager, Dashboard, "get_dashboard_data", **kwargs
                )
                self.assertEqual(name, "odoo.exceptions.UserError")
                self.assertIn(expected, message)
        team_2 = self.env["crm.team"].create(
            {"name": "API team 2", "company_id": self.company_2.id}
        )
        name, message = self._jsonrpc(
            self.user_sales_manager, Dashboard, "get_dashboard_data", team_id=team_2.id
        )
        self.assertEqual(name, "odoo.exceptions.UserError")
        self.assertIn("not in your dashboard", message)
        # A good call still works. (JSON-RPC: the dashboard's figures use null for "no
        # value", which Odoo's XML-RPC server does not marshal.)
        body = self._jsonrpc_response(
            self.user_sales_manager, Dashboard, "get_dashboard_data", period="quarter"
        )
        self.assertEqual(body["result"]["scope"], "company")

    def test_duplicates_centre_is_closed_to_salespeople(self):
        name, _message = self._jsonrpc(
            self.user_salesman_all, "crm.lead.duplicate.cluster", "search_read", [], ["id"]
        )
        self.assertEqual(name, "odoo.exceptions.AccessError")
        name, _message = self._jsonrpc(
            self.user_salesman_all, "crm.lead.duplicate.scan", "create", [{}]
        )
        self.assertEqual(name, "odoo.exceptions.AccessError")

    def test_not_a_duplicate_without_its_lead(self):
        Exclusion = self.env["crm.lead.duplicate.exclusion"]
        before = Exclusion.search_count([])
        name, message = self._jsonrpc(
            self.user_salesman_all, "crm.lead", "action_mark_not_duplicate", [self.lead.id]
        )
        self.assertEqual(name, "odoo.exceptions.UserError")
        self.assertIn("similar leads", message)
        self.assertEqual(Exclusion.search_count([]), before)

    def test_ids_of_another_company_are_refused(self):
        name, _message = self._jsonrpc(
            self.user_salesman_all,
            "crm.lead",
            "write",
            [self.lead_company_2.id],
            {"is_budget_confirmed": True},
        )
        self.assertEqual(name, "odoo.exceptions.AccessError")
        name, _message = self._jsonrpc(
            self.user_salesman_all,
            "crm.lead",
            "action_reset_priority_automatic",
            [self.lead_company_2.id],
        )
        self.assertEqual(name, "odoo.exceptions.AccessError")
        self.assertFalse(self.lead_company_2.is_budget_confirmed)
