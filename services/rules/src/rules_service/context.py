"""What the rules service's handlers receive."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules_service.runner import RuleCache
from rules_service.settings import RulesSettings
from rules_service.store import RulesStore
from servicekit.context import Context


@dataclass
class RulesContext(Context[RulesSettings, RulesStore]):
    # the enabled rules, cached by this process (rules_cache_ttl_s)
    rules: RuleCache = field(default_factory=RuleCache)
