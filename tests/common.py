from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.tests import TransactionCase
from odoo.tools import SQL


class PipelineOptimizerCommon(TransactionCase):
    """The world every test of the module starts from: one user per sales role, a second
    company with its own salesperson, a sales team and the seeded B2B stages."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_main = cls.env.company
        cls.company_2 = cls.env["res.company"].create({"name": "Pipeline Company 2"})
        cls.user_salesman_own = mail_new_test_user(
            cls.env,
            login="pipeline_salesman_own",
            name="Sam Own Documents",
            email="sam.own@example.com",
            groups="sales_team.group_sale_salesman",
        )
        cls.user_salesman_all = mail_new_test_user(
            cls.env,
            login="pipeline_salesman_all",
            name="Alex All Documents",
            email="alex.all@example.com",
            groups="sales_team.group_sale_salesman_all_leads",
        )
        cls.user_sales_manager = mail_new_test_user(
            cls.env,
            login="pipeline_sales_manager",
            name="Morgan Sales Manager",
            email="morgan.manager@example.com",
            groups="sales_team.group_sale_manager",
        )
        cls.user_company_2 = mail_new_test_user(
            cls.env,
            login="pipeline_salesman_c2",
            name="Casey Company Two",
            email="casey.c2@example.com",
            groups="sales_team.group_sale_salesman_all_leads",
            company_id=cls.company_2.id,
            company_ids=[(6, 0, cls.company_2.ids)],
        )
        cls.sales_team = cls.env["crm.team"].create(
            {
                "name": "Pipeline Team",
                "user_id": cls.user_sales_manager.id,
                "member_ids": [(6, 0, (cls.user_salesman_own | cls.user_salesman_all).ids)],
            }
        )
        cls.stage_new = cls.env.ref("crm.stage_lead1")
        cls.stage_qualified = cls.env.ref("crm.stage_lead2")
        cls.stage_proposal = cls.env.ref("crm.stage_lead3")
        cls.stage_negotiation = cls.env.ref("crm_pipeline_optimizer.stage_negotiation")
        cls.stage_won = cls.env.ref("crm.stage_lead4")

    @classmethod
    def _backdate(cls, leads, stage_days=0, idle_days=0):
        """Moves leads back in time behind the ORM, which would stamp write_date with now:
        they entered their stage `stage_days` ago and were last updated `idle_days` ago."""
        cls.env.flush_all()
        cls.env.cr.execute(
            SQL(
                """UPDATE crm_lead
                      SET date_last_stage_update = now() - make_interval(days => %s),
                          write_date = now() - make_interval(days => %s)
                    WHERE id IN %s""",
                stage_days,
                idle_days,
                tuple(leads.ids),
            )
        )
        leads.invalidate_recordset()
