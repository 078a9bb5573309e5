"""Generate the AsyncAPI 3.0 document of the whole bus from the contracts.

``python -m contracts.asyncapi > docs/asyncapi.json`` regenerates the checked-in
copy; a test fails when that copy is stale.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from contracts.envelope import Envelope
from contracts.events import all_events
from contracts.rpc import ErrorBody, RpcReply, all_rpcs
from contracts.streams import STREAMS


def _schema(model: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        defs[name] = sub
    defs[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    _schema(Envelope, schemas)
    _schema(RpcReply, schemas)
    _schema(ErrorBody, schemas)

    for spec in all_events():
        key = f"{spec.type}.v{spec.version}".replace(".", "_")
        messages[key] = {
            "name": spec.type,
            "title": f"{spec.type} v{spec.version}",
            "summary": spec.description,
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {"type": "string", "description": "= envelope.event_id"},
                    "traceparent": {"type": "string"},
                },
            },
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {"type": "object", "properties": {"data": _schema(spec.model, schemas)}},
                ]
            },
        }
        channels[key] = {
            "address": spec.subject,
            "description": f"JetStream stream {spec.stream}",
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        }
        operations[f"publish_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
        }

    for rpc in all_rpcs():
        key = rpc.subject.replace(".", "_")
        req, rep = f"{key}_request", f"{key}_reply"
        messages[req] = {"name": f"{rpc.subject} request", "summary": rpc.description,
                         "payload": _schema(rpc.request, schemas)}
        reply_payload: dict[str, Any] = {"$ref": "#/components/schemas/RpcReply"}
        if rpc.response is not None:
            reply_payload = {"allOf": [reply_payload, {"type": "object", "properties": {
                "data": _schema(rpc.response, schemas)}}]}
        messages[rep] = {"name": f"{rpc.subject} reply", "payload": reply_payload}
        channels[key] = {
            "address": rpc.subject,
            "description": "NATS request/reply (core NATS, queue group = service name)",
            "messages": {req: {"$ref": f"#/components/messages/{req}"},
                         rep: {"$ref": f"#/components/messages/{rep}"}},
        }
        operations[f"serve_{key}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{req}"}],
            "reply": {"messages": [{"$ref": f"#/channels/{key}/messages/{rep}"}]},
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Microtask Engine bus",
            "version": "1.0.0",
            "description": "Events (JetStream streams: "
            + ", ".join(f"{s.name}={'|'.join(s.subjects)}" for s in STREAMS)
            + ") and RPCs of every service.",
        },
        "defaultContentType": "application/json",
        "servers": {"nats": {"host": "127.0.0.1:4222", "protocol": "nats"}},
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": dict(sorted(messages.items())),
                       "schemas": dict(sorted(schemas.items()))},
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
