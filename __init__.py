from . import models
from . import rules
from . import wizard
from .hooks import _post_init_score_leads, _pre_init_prepare_leads, _uninstall_drop_indexes
