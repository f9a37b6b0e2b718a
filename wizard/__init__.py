from . import crm_lead_merge_cluster
from . import crm_lead_duplicate_scan
