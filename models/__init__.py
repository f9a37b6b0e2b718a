from . import res_company
from . import res_config_settings
from . import crm_stage
from . import crm_team
from . import crm_lead_scoring_criterion
from . import crm_lead_scoring_factor
from . import crm_lead
