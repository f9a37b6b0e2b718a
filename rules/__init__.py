"""The pipeline's rules as pure functions, each written once: Python for the records at
hand, and the SQL the set-based jobs run generated from the same definition (tests check
that both agree). Nothing here touches the ORM."""

from . import match_keys, periods, stage_clock, stars
