from datetime import timedelta

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.exceptions import AccessError
from odoo.tests import freeze_time, tagged

from .common import T0, PipelineOptimizerCommon, StaleDealsCommon

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


class RoleMatrixCommon(PipelineOptimizerCommon):
    @classmethod
    def _set_up_roles(cls):
        """The five roles of the matrices, by name: an internal user without sales rights,
        both kinds of salesperson, the sales administrator, another company's salesperson."""
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


@tagged("access", "post_install", "-at_install")
class TestAccessMatrix(RoleMatrixCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._set_up_roles()
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


@tagged("access", "post_install", "-at_install")
class TestActionMatrix(RoleMatrixCommon):
    """Who may run each action of the module on a colleague's deal of the first company,
    and what each role's dashboard counts: actions × roles, allowed or AccessError."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._set_up_roles()
        Lead = cls.env["crm.lead"]
        # A deal of the all-documents salesperson and its duplicate: the own-documents
        # salesperson must not touch it, nor anybody of the other company.
        cls.deal, cls.duplicate = Lead.create(
            [
                {
                    "name": name,
                    "type": "opportunity",
                    "email_from": "buyer@acme-matrix.example",
                    "team_id": cls.sales_team.id,
                    "user_id": cls.user_salesman_all.id,
                }
                for name in ("Matrix deal", "Matrix deal again")
            ]
        )
        # One deal won this month by each salesperson, one in the other company.
        won = Lead.create(
            [
                {"name": "Won by own", "type": "opportunity", "user_id": user.id, **extra}
                for user, extra in (
                    (cls.user_salesman_own, {"team_id": cls.sales_team.id}),
                    (cls.user_salesman_all, {"team_id": cls.sales_team.id}),
                    (cls.user_company_2, {"company_id": cls.company_2.id, "team_id": False}),
                )
            ]
        )
        won.action_set_won()
        cls.env["crm.lead.duplicate.cluster"]._find_clusters(
            [("id", "in", cls.deal.ids + cls.duplicate.ids)]
        )
        cls.cluster = cls.env["crm.lead.duplicate.cluster"].search(
            [("lead_ids", "in", cls.deal.ids)]
        )

    ACTIONS = {
        "reset stars to the score": (
            lambda self, env: (
                env["crm.lead"].browse(self.deal.id).action_reset_priority_automatic()
            ),
            {"all", "manager"},
        ),
        "show similar leads": (
            lambda self, env: env["crm.lead"].browse(self.deal.id).action_show_similar_leads(),
            {"all", "manager"},
        ),
        "open the merge of similar leads": (
            lambda self, env: env["crm.lead"].browse(self.deal.id).action_merge_similar_leads(),
            {"all", "manager"},
        ),
        "mark not a duplicate": (
            lambda self, env: (
                env["crm.lead"]
                .browse(self.duplicate.id)
                .with_context(similar_to_lead_id=self.deal.id)
                .action_mark_not_duplicate()
            ),
            {"all", "manager"},
        ),
        "merge the two deals": (
            lambda self, env: (
                env["crm.lead"].browse(self.deal.ids + self.duplicate.ids)
            )._merge_into(env["crm.lead"].browse(self.deal.id)),
            {"all", "manager"},
        ),
        "open a duplicates cluster's merge": (
            lambda self, env: (
                env["crm.lead.duplicate.cluster"].browse(self.cluster.id).action_open_merge_wizard()
            ),
            {"manager"},
        ),
        "merge a duplicates cluster": (
            lambda self, env: (
                env["crm.lead.duplicate.cluster"].browse(self.cluster.id).action_merge()
            ),
            {"manager"},
        ),
        "dismiss a duplicates cluster": (
            lambda self, env: (
                env["crm.lead.duplicate.cluster"].browse(self.cluster.id).action_dismiss()
            ),
            {"manager"},
        ),
        "find duplicates": (
            lambda self, env: env["crm.lead.duplicate.scan"].create({}).action_scan(),
            {"manager"},
        ),
        "rescore in bulk from the settings": (
            lambda self, env: (
                env["res.config.settings"].create({"score_learned_weight": 40}).execute()
            ),
            set(),  # Settings are the administrator's, as everywhere in Odoo
        ),
    }

    def test_actions_of_every_role(self):
        self.assertEqual(len(self.cluster), 1, "the two deals form one cluster")
        checked = 0
        for action, (run, allowed) in self.ACTIONS.items():
            for role, user in self.roles.items():
                with self.subTest(action=action, role=role), self.env.cr.savepoint() as savepoint:
                    env = self.env(user=user)
                    if role in allowed:
                        run(self, env)
                    else:
                        with self.assertRaises(AccessError):
                            run(self, env)
                    savepoint.rollback()
                    self.env.invalidate_all()
                checked += 1
        self.assertEqual(checked, len(self.ACTIONS) * len(self.roles))

    def test_dashboard_numbers_of_every_role(self):
        # The manager filters on the test team: the database may hold other deals.
        expected_won = {
            "own": (1, {}),
            "all": (1, {}),
            "manager": (2, {"team_id": self.sales_team.id}),
            "other": (1, {}),
        }
        for role, (count, filters) in expected_won.items():
            with self.subTest(role=role):
                data = (
                    self.env["crm.pipeline.dashboard"]
                    .with_user(self.roles[role])
                    .get_dashboard_data("month", **filters)
                )
                self.assertEqual(data["kpis"]["won_count"]["value"], count)
                drilled = (
                    self.env["crm.lead"]
                    .with_user(self.roles[role])
                    .search_count(data["kpis"]["won_count"]["domain"])
                )
                self.assertEqual(drilled, count, "the drill-down shows the same deals")


@tagged("access", "post_install", "-at_install")
class TestCronEffectsMatrix(RoleMatrixCommon, StaleDealsCommon):
    """What each role sees of the stale-deals cron's work: the follow-ups it plans land
    on the deal's salesperson, and each role finds exactly those on the deals it may
    read (a follow-up never shows another company's or, to an own-documents salesperson,
    a colleague's deal)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._set_up_roles()

    def test_followups_seen_by_every_role(self):
        team_2 = self.env["crm.team"].create({"name": "Team C2", "company_id": self.company_2.id})
        deals = {
            "own": self._opportunity(user_id=self.user_salesman_own.id),
            "all": self._opportunity(user_id=self.user_salesman_all.id),
            "other": self._opportunity(
                user_id=self.user_company_2.id, team_id=team_2.id, company_id=self.company_2.id
            ),
        }
        with freeze_time(T0 + timedelta(days=4)):
            self._run_until_done("_cron_stale_followups")
        followups = {owner: self._followups(deal) for owner, deal in deals.items()}
        for owner, deal in deals.items():
            self.assertEqual(followups[owner].user_id, deal.user_id, "planned for its owner")
        visible = {
            "internal": set(),
            "own": {"own"},
            "all": {"own", "all"},
            "manager": {"own", "all"},
            "other": {"other"},
        }
        every_followup = self.env["mail.activity"].concat(*followups.values())
        for role, owners in visible.items():
            with self.subTest(role=role):
                found = (
                    self.env["mail.activity"]
                    .with_user(self.roles[role])
                    .search([("id", "in", every_followup.ids)])
                )
                self.assertEqual(
                    found.sudo(), self.env["mail.activity"].concat(*(followups[o] for o in owners))
                )
