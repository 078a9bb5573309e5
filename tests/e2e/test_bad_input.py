"""Inputs the schemathesis fuzzer found answering 500: each is the caller's mistake (4xx)."""

from __future__ import annotations


async def test_huge_offsets_and_overlong_ids_are_4xx_not_500(stack) -> None:
    c, admin = stack.client, stack.admin.headers
    huge = 177743278656716447678464
    for path in ("/api/admin/worker-share/audit", "/api/admin/users", "/api/admin/audit",
                 "/api/rules/explain/w-1", "/api/admin/payouts"):
        r = await c.get(path, headers=admin, params={"offset": huge, "limit": 17})
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    r = await c.post(f"/api/admin/payouts/{'0' * 63}/reject", headers=admin,
                     json={"comment": ""})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text
