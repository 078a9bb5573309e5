"""Helpers shared by the product API routers (translation only, no business rules).

The HIDDEN SHARE rule lives here too: worker and manager responses are built from
response models without price or share fields (FastAPI drops anything else a
service might send); ``model_hidden_fields`` and ``hidden_keys`` are the checks the
tests run over every route's model and every reply.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from contracts.rpc import MAX_OFFSET, Page

# An optional id in a query string (a filter): as long as any id can be.
QueryId = Annotated[str | None, Query(min_length=1, max_length=64)]

# Keys that would reveal the worker share or the gross price to a worker or a manager.
HIDDEN_KEY = re.compile(r"(^|_)(share|shares|share_bps|worker_share|price|price_minor|gross"
                        r"|gross_minor|platform|platform_minor|platform_revenue)(_|$)",
                        re.IGNORECASE)


def hidden_keys(data: Any, path: str = "$") -> list[str]:
    """Paths of every key in ``data`` that names a share, a price or the platform's cut."""
    found: list[str] = []
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(k, str) and HIDDEN_KEY.search(k):
                found.append(f"{path}.{k}")
            found.extend(hidden_keys(v, f"{path}.{k}"))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found.extend(hidden_keys(v, f"{path}[{i}]"))
    return found


def model_hidden_fields(model: type[BaseModel]) -> list[str]:
    """Field paths in a response model's schema that would carry hidden values."""
    found: list[str] = []
    seen: set[type] = set()

    def walk(m: type[BaseModel], path: str) -> None:
        if m in seen:
            return
        seen.add(m)
        for name, field in m.model_fields.items():
            if HIDDEN_KEY.search(name):
                found.append(f"{path}.{name}")
            for sub in _models_in(field.annotation):
                walk(sub, f"{path}.{name}")

    walk(model, model.__name__)
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in getattr(annotation, "__args__", ()) or ():
        out.extend(_models_in(arg))
    return out


async def page(limit: int = Query(50, ge=1, le=500, description="page size"),
         offset: int = Query(0, ge=0, le=MAX_OFFSET, description="items to skip")) -> Page:
    """Pagination query parameters as the contracts' ``Page``."""
    return Page(limit=limit, offset=offset)
