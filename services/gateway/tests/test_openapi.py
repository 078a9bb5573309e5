"""The OpenAPI the gateway publishes: every input bounded, every refusal documented.

(Schemathesis checks the answers against it in tests/e2e/test_schemathesis.py.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway_service.main import create_gateway
from gateway_service.settings import GatewaySettings

# Inputs bounded elsewhere than in their schema, and why.
BOUNDED_ELSEWHERE = {
    # the raw upload (JSON rows or TSV text) is bounded by MAX_UPLOAD_BYTES, rows by the
    # pool's input spec
    "POST /api/admin/pools/{pool_id}/tasks body",
    "POST /api/admin/pools/{pool_id}/tasks body[]",
    # answers: at most 200 fields and MAX_ANSWERS_CHARS of JSON (contracts.rpc.tasks)
    "POST /api/worker/assignments/{assignment_id}/submit body>SubmitBody.answers",
    "POST /api/sandbox/assignments/{assignment_id}/submit body>SubmitBody.answers",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    gw = create_gateway(GatewaySettings(database_url="postgresql://unused/x",
                                        nats_url="nats://127.0.0.1:1", environment="test"))
    return gw.app.openapi()


def bounded_pattern(pattern: str) -> bool:
    """An anchored pattern with no unbounded repetition (``^[a-z]{1,64}$``) bounds a length."""
    return (pattern.startswith("^") and pattern.endswith("$") and "*" not in pattern
            and "+" not in pattern and re.search(r"\{\d*,\}", pattern) is None)


def unbounded(spec: dict[str, Any]) -> set[str]:
    """Every string without a length (or a fixed set of values), integer without a
    maximum, array without a largest size and open object, in any parameter or body."""
    components = spec.get("components", {}).get("schemas", {})
    found: set[str] = set()

    def walk(x: dict[str, Any], where: str, seen: frozenset[str]) -> None:
        ref = x.get("$ref")
        if ref:
            if ref not in seen:
                walk(components[ref.rsplit("/", 1)[-1]], f"{where}>{ref.rsplit('/', 1)[-1]}",
                     seen | {ref})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in x.get(key, []):
                walk(sub, where, seen)
        kind = x.get("type")
        fixed = any(k in x for k in ("enum", "const"))
        if kind == "string" and not fixed and "maxLength" not in x and "format" not in x \
                and not bounded_pattern(x.get("pattern", "")):
            found.add(where)
        if kind == "integer" and not fixed and "maximum" not in x:
            found.add(where)
        if kind == "array":
            if "maxItems" not in x:
                found.add(where)
            walk(x.get("items", {}), f"{where}[]", seen)
        if kind == "object" or "properties" in x:
            for name, sub in x.get("properties", {}).items():
                walk(sub, f"{where}.{name}", seen)
            extra = x.get("additionalProperties")
            if isinstance(extra, dict):
                walk(extra, f"{where}.*", seen)
            elif extra is not False and "properties" not in x:
                found.add(where)

    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            name = f"{method.upper()} {path}"
            for p in op.get("parameters", []):
                walk(p["schema"], f"{name} ?{p['name']}", frozenset())
            for content in op.get("requestBody", {}).get("content", {}).values():
                walk(content.get("schema", {}), f"{name} body", frozenset())
    return found


def test_a_pattern_bounds_a_length_only_when_anchored_and_finite() -> None:
    assert bounded_pattern(r"^[A-Za-z0-9_.:-]{1,64}$")
    for open_ended in (r"[a-z]{1,64}", r"^[a-z]+$", r"^a.*$", r"^[a-z]{3,}$"):
        assert not bounded_pattern(open_ended)


def test_every_string_integer_and_list_of_the_api_is_bounded(spec) -> None:
    assert unbounded(spec) - BOUNDED_ELSEWHERE == set()
    assert unbounded(spec) >= BOUNDED_ELSEWHERE  # the list holds no stale entries


def test_every_operation_documents_its_refusals_with_the_error_body(spec) -> None:
    ref = "#/components/schemas/ErrorOut"
    assert spec["components"]["schemas"]["ErrorOut"]["properties"]["error"]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            assert {"400", "422", "503"} <= codes, (method, path, codes)
            if path not in ("/api/status", "/api/auth/login", "/api/auth/login-link",
                            "/api/leads"):  # public: no session to refuse
                assert {"401", "403"} <= codes, (method, path, codes)
            for code, answer in op["responses"].items():
                if int(code) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ref}, (method, path, code, schema)
    take = spec["paths"]["/api/worker/tasks/take"]["post"]["responses"]
    assert {"428", "429"} <= set(take)
    assert "429" in spec["paths"]["/api/auth/login"]["post"]["responses"]
