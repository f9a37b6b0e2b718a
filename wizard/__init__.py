from . import crm_lead_merge_cluster
from . import crm_lead_duplicate_scan
from . import crm_merge_opportunity
from . import crm_lead_to_opportunity
from . import base_import_import
