from . import test_crm_stage
from . import test_lead_scoring
from . import test_pipeline_ui
