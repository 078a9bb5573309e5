"""What the review service's handlers receive."""

from __future__ import annotations

from review_service.settings import ReviewSettings
from review_service.store import ReviewStore
from servicekit.context import Context

ReviewContext = Context[ReviewSettings, ReviewStore]
