"""What the support service's handlers receive."""

from __future__ import annotations

from servicekit.context import Context
from support_service.settings import SupportSettings
from support_service.store import SupportStore

SupportContext = Context[SupportSettings, SupportStore]
