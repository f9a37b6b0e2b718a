from . import test_crm_stage
from . import test_lead_scoring
from . import test_pipeline_ui
from . import test_stale_deals
from . import test_pipeline_automation
from . import test_pipeline_dashboard
from . import test_i18n
from . import test_lead_duplicates
