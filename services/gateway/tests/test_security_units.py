"""The security layer's use cases on an in-memory store: no database, no bus."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_store import FakeGatewayStore

from gateway_service.errors import ApiError
from gateway_service.security import SecurityLayer, passwords
from gateway_service.security.mfa import SecretBox
from gateway_service.security.sessions import SessionInfo
from gateway_service.security.throttle import Throttle
from gateway_service.settings import GatewaySettings
from servicekit.testing.fakes import fake_context

NOW = datetime(2026, 6, 1, 12, 0, 15, tzinfo=UTC)
GOOD = "a quiet river at dawn"


def layer(store: FakeGatewayStore | None = None, **settings: object) -> SecurityLayer:
    s = GatewaySettings(database_url="postgresql://unused/x", environment="test", **settings)
    return SecurityLayer(fake_context(s, store or FakeGatewayStore(), clock=lambda: NOW))


def store_of(sec: SecurityLayer) -> FakeGatewayStore:
    return sec.ctx.db.store  # type: ignore[attr-defined, no-any-return]


def session_of(user_id: str, role: str = "admin", login: str = "admin") -> SessionInfo:
    return SessionInfo(session_id="s1", user_id=user_id, role=role, login=login,
                       mfa_elevated=False, must_change_password=False)


async def refused(coro: object, status: int, code: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        await coro  # type: ignore[misc]
    assert (info.value.status, info.value.code) == (status, code), info.value.message
    return info.value


async def test_create_user_records_the_event_and_the_audit_entry_once() -> None:
    sec = layer()
    created = await sec.accounts.create_user(login=" Ann.Worker ", role="worker", password=None,
                                             created_by="boss")
    assert created.login == "ann.worker" and len(created.temporary_password) >= 16
    await refused(sec.accounts.create_user(login="ann.worker", role="manager", password=None,
                                           created_by="boss"), 409, "login_taken")
    assert sec.ctx.db.event_types() == ["gateway.user.created"]  # type: ignore[attr-defined]
    assert store_of(sec).kinds() == ["user.created"]
    user = store_of(sec).users[created.user_id]
    assert user.must_change_password and user.password_hash.startswith("$argon2id$")


async def test_logins_name_known_accounts_and_skip_the_rest() -> None:
    sec = layer()
    ann = await sec.accounts.create_user(login="ann", role="manager", password=None,
                                         created_by="boss")
    assert await sec.accounts.logins([ann.user_id, None, "gone", ann.user_id]) == {
        ann.user_id: "ann"}
    assert await sec.accounts.logins([None]) == {}


@pytest.mark.parametrize(("login", "role", "password", "code"), [
    ("x", "worker", None, "invalid_login"), ("bad login!", "worker", None, "invalid_login"),
    ("carol", "owner", None, "invalid_role"), ("bob", "worker", "12345678", "weak_password"),
    ("bob", "worker", " " * 9, "weak_password")])
async def test_create_user_refuses_bad_input(login: str, role: str, password: str | None,
                                             code: str) -> None:
    sec = layer()
    await refused(sec.accounts.create_user(login=login, role=role, password=password,
                                           created_by="boss"), 422, code)
    assert sec.ctx.db.event_types() == [] and store_of(sec).users == {}  # type: ignore[attr-defined]


async def test_bootstrap_creates_the_admin_exactly_once() -> None:
    sec = layer()
    password = await sec.accounts.bootstrap()
    assert password and await sec.accounts.bootstrap() is None
    (admin,) = store_of(sec).users.values()
    assert admin.login == "admin" and admin.role == "admin" and admin.must_change_password
    assert store_of(sec).kinds() == ["bootstrap.admin_created"]
    assert sec.ctx.db.event_types() == ["gateway.user.created"]  # type: ignore[attr-defined]


async def test_login_succeeds_clears_the_account_and_gives_the_address_its_place_back() -> None:
    sec = layer()
    created = await sec.accounts.create_user(login="ann", role="worker", password=GOOD,
                                             created_by=None)
    await refused(sec.accounts.login("ann", "wrong password", "10.0.0.1"), 401,
                  "invalid_credentials")
    assert store_of(sec).throttles["acct:ann"].failures == 1
    result = await sec.accounts.login("ANN", GOOD, "10.0.0.1")
    assert result.user.user_id == created.user_id and result.user.must_change_password
    assert "acct:ann" not in store_of(sec).throttles  # cleared
    assert store_of(sec).throttles["addr:10.0.0.1"].failures == 1  # only the wrong one counts
    assert store_of(sec).kinds()[-2:] == ["login.failed", "login.succeeded"]
    assert sec.sessions.tokens.hash(result.token) in store_of(sec).sessions


async def test_a_blocked_account_is_refused_before_any_password_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeGatewayStore()
    sec = layer(store)
    await sec.accounts.create_user(login="ann", role="worker", password=GOOD, created_by=None)
    store.throttles["acct:ann"] = Throttle(5, NOW, NOW, NOW + timedelta(seconds=30), 1)
    checked: list[str] = []
    monkeypatch.setattr(passwords, "verify_password",
                        lambda *a, **k: checked.append("x") or (True, False))
    error = await refused(sec.accounts.login("ann", GOOD, "10.0.0.1"), 429, "too_many_attempts")
    assert error.headers == {"Retry-After": "30"} and checked == []
    assert store.kinds()[-1] == "login.throttled"
    assert store.throttles["addr:10.0.0.1"].failures == 0  # a refused attempt counts nowhere


async def test_a_disabled_account_is_told_only_with_the_right_password() -> None:
    sec = layer()
    created = await sec.accounts.create_user(login="ann", role="worker", password=GOOD,
                                             created_by=None)
    changed = await sec.accounts.set_disabled(session_of("boss"), created.user_id, True, None)
    assert changed.disabled and changed.sessions_revoked == 0
    await refused(sec.accounts.login("ann", "wrong password", None), 401, "invalid_credentials")
    await refused(sec.accounts.login("ann", GOOD, None), 403, "account_disabled")
    assert store_of(sec).kinds()[-1] == "login.refused"


async def test_disabling_ends_every_session_and_refuses_oneself_and_strangers() -> None:
    sec = layer()
    created = await sec.accounts.create_user(login="ann", role="worker", password=GOOD,
                                             created_by=None)
    for _ in range(2):
        await sec.accounts.login("ann", GOOD, None)
    await refused(sec.accounts.set_disabled(session_of("boss"), "boss", True, None), 409,
                  "cannot_disable_self")
    await refused(sec.accounts.set_disabled(session_of("boss"), "nobody", True, None), 404,
                  "user_not_found")
    changed = await sec.accounts.set_disabled(session_of("boss"), created.user_id, True, None)
    assert changed.sessions_revoked == 2
    again = await sec.accounts.set_disabled(session_of("boss"), created.user_id, True, None)
    assert again.sessions_revoked == 0  # nothing changed, nothing audited
    await sec.accounts.set_disabled(session_of("boss"), created.user_id, False, None)
    assert store_of(sec).kinds().count("user.disabled") == 1
    assert store_of(sec).kinds()[-1] == "user.enabled"


async def test_change_password_needs_the_old_one_and_a_strong_new_one() -> None:
    sec = layer()
    created = await sec.accounts.create_user(login="ann", role="worker", password=GOOD,
                                             created_by=None)
    me = session_of(created.user_id, "worker", "ann")
    await refused(sec.accounts.change_password(me, GOOD, "password1", None), 422,
                  "weak_password")
    await refused(sec.accounts.change_password(me, GOOD, GOOD, None), 422, "weak_password")
    await refused(sec.accounts.change_password(me, "not it at all", "x" + GOOD, None), 403,
                  "invalid_credentials")
    token = await sec.accounts.change_password(me, GOOD, "x" + GOOD, None)
    assert sec.sessions.tokens.hash(token) in store_of(sec).sessions
    assert not store_of(sec).users[created.user_id].must_change_password
    assert store_of(sec).kinds()[-2:] == ["password.change_failed", "password.changed"]


async def enrolled(sec: SecurityLayer) -> tuple[SessionInfo, str]:
    created = await sec.accounts.create_user(login="ann", role="admin", password=GOOD,
                                             created_by=None)
    me = session_of(created.user_id, login="ann")
    store_of(sec).sessions["h"] = {"session_id": "s1", "user_id": created.user_id}
    setup = await sec.mfa.setup(me, None)
    await sec.mfa.confirm(me, pyotp.TOTP(setup.secret).at(NOW), None)
    return me, setup.secret


async def test_step_up_refusals_and_a_wrong_code_kept_counted() -> None:
    sec = layer()
    me, secret = await enrolled(sec)
    await refused(sec.mfa.step_up(me, None, None, None), 422, "invalid_request")
    await refused(sec.mfa.step_up(me, "123456", "abcde-fghij", None), 422, "invalid_request")
    stranger = session_of("nobody")
    await refused(sec.mfa.step_up(stranger, "123456", None, None), 409, "mfa_not_enabled")
    await refused(sec.mfa.step_up(me, pyotp.TOTP(secret).at(NOW), None, None), 400,
                  "invalid_code")  # that step was used by the confirmation
    assert store_of(sec).throttles["mfa:" + me.user_id].failures == 1  # committed, then refused
    assert store_of(sec).kinds()[-1] == "mfa.failed"
    until = await sec.mfa.step_up(me, pyotp.TOTP(secret).at(NOW + timedelta(seconds=30)), None,
                                  None)
    assert until == NOW + timedelta(seconds=sec.settings.mfa_elevation_s)
    assert "mfa:" + me.user_id not in store_of(sec).throttles


async def test_a_secret_no_key_opens_is_a_clear_503() -> None:
    sec = layer()
    me, _ = await enrolled(sec)
    cred = store_of(sec).mfa[me.user_id]
    cred.secret = SecretBox("a key nobody configured" + "x" * 20).seal("JBSWY3DPEHPK3PXP")
    await refused(sec.mfa.step_up(me, "123456", None, None), 503, "mfa_unavailable")


async def test_an_unknown_login_link_is_refused_counted_and_audited() -> None:
    sec = layer()
    await refused(sec.login_links.login("no-such-token", "10.0.0.9"), 401, "invalid_link")
    assert store_of(sec).throttles["addr:10.0.0.9"].failures == 1
    assert store_of(sec).kinds() == ["login_link.failed"]


async def test_a_login_link_works_once_and_gives_the_address_its_place_back() -> None:
    sec = layer()
    created = await sec.accounts.create_user(login="ann", role="worker", password=GOOD,
                                             created_by=None)
    link = await sec.login_links.create(session_of("boss"), created.user_id, None)
    token = link.url.split("#token=", 1)[1]
    result = await sec.login_links.login(token, "10.0.0.9")
    assert result.user.user_id == created.user_id and not result.user.must_change_password
    assert store_of(sec).throttles["addr:10.0.0.9"].failures == 0
    await refused(sec.login_links.login(token, "10.0.0.9"), 401, "invalid_link")
    await refused(sec.login_links.create(session_of("boss"), "nobody", None), 404,
                  "user_not_found")
