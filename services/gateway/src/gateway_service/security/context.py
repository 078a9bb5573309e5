"""What the security layer's use cases receive: settings, the clock, the unit of work."""

from __future__ import annotations

from gateway_service.security.store import GatewayStore
from gateway_service.settings import GatewaySettings
from servicekit.context import Context

GatewayContext = Context[GatewaySettings, GatewayStore]
