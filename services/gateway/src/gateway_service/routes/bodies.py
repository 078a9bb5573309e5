"""HTTP body models: the contract requests' own fields, never copies of them.

``body_of(tasks_rpc.Submit, "SubmitBody", without={"assignment_id"})`` is a model with
every field of ``Submit`` but ``actor`` (the session's) and ``assignment_id`` (the
path's), with the contract's types, bounds and defaults; ``request_of(body, Submit,
actor=..., assignment_id=...)`` builds the contract request from it, carrying only the
fields the client set (an update tells "leave it" from "null"). When a contract changes,
its body follows.

(A NUL character anywhere in a request is refused before routing: ``http.RefuseNul``.)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, create_model

RequestT = TypeVar("RequestT", bound=BaseModel)


def _fields(model: type[BaseModel], name: str, without: Iterable[str],
            doc: Mapping[str, str] | None) -> dict[str, Any]:
    skip = {"actor", *without}
    fields: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        if field_name in skip:
            continue
        info = copy.copy(info)
        if doc and field_name in doc:
            info.description = doc[field_name]
        fields[field_name] = (info.annotation, info)
    unknown = set(doc or ()) - set(fields)
    if unknown:
        raise ValueError(f"{name}: no fields {sorted(unknown)} in {model.__name__}")
    return fields


def body_of(request: type[BaseModel], name: str, *, without: Iterable[str] = (),
            doc: Mapping[str, str] | None = None) -> type[BaseModel]:
    """A body model named ``name`` with the fields of the contract ``request`` except
    ``actor`` and ``without``; ``doc`` gives fields the public API's own description."""
    return create_model(name, **_fields(request, name, without, doc))


def request_of(body: BaseModel | None, request: type[RequestT], **fields: Any) -> RequestT:
    """The contract request: what the client set in ``body`` plus ``fields`` (the actor,
    ids from the path)."""
    given = {k: getattr(body, k) for k in body.model_fields_set} if body is not None else {}
    return request(**given, **fields)
