{
    "name": "CRM Pipeline Optimizer",
    "summary": "A pipeline that manages itself: stage SLAs and exit criteria, "
    "lead scoring, stale-deal follow-ups, duplicate merging and a pipeline dashboard",
    "version": "18.0.1.2.0",
    "category": "Sales/CRM",
    "license": "LGPL-3",
    "author": "CRM Pipeline Optimizer developers",
    "depends": ["crm", "base_automation"],
    "data": [
        "security/ir.model.access.csv",
        "security/crm_pipeline_optimizer_security.xml",
        "data/crm_stage_data.xml",
        "data/crm_lead_scoring_criterion_data.xml",
        "data/mail_activity_type_data.xml",
        "data/mail_template_data.xml",
        "data/base_automation_data.xml",
        "data/ir_cron_data.xml",
        "views/crm_stage_views.xml",
        "views/crm_team_views.xml",
        "views/crm_team_revenue_target_views.xml",
        "views/crm_pipeline_dashboard_views.xml",
        "views/crm_lead_views.xml",
        "views/crm_lead_scoring_criterion_views.xml",
        "views/res_config_settings_views.xml",
        "views/crm_pipeline_optimizer_menus.xml",
        "report/pipeline_health_report.xml",
    ],
    "demo": [
        "demo/crm_lead_demo.xml",
    ],
    "pre_init_hook": "_pre_init_prepare_leads",
    "post_init_hook": "_post_init_score_leads",
    "uninstall_hook": "_uninstall_drop_indexes",
    "assets": {
        "web.assets_backend": [
            "crm_pipeline_optimizer/static/src/**/*",
        ],
        "web.assets_tests": [
            "crm_pipeline_optimizer/static/tests/tours/**/*",
        ],
    },
}
