from . import models


def _post_init_score_leads(env):
    """Keep the stars salespeople already gave, learn from the history the database
    already has, and score its open leads."""
    env.cr.execute(
        "UPDATE crm_lead SET is_priority_manual = TRUE WHERE COALESCE(priority, '0') != '0'"
    )
    env["crm.lead"]._update_all_scores()
