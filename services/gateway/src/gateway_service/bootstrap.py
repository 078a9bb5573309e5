"""First start: create the one admin with a random one-time password, exactly once.

A persistent marker row (``gateway_markers.name = 'bootstrap'``) written in the same
transaction as the admin decides whether the bootstrap ran, not "are there users": deleting
users can never bring a known default back, and two replicas starting together race on
the marker's primary key so only one creates the admin.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from gateway_service import passwords
from gateway_service.auth import Auth
from gateway_service.db import gateway_markers, users
from servicekit.db import dialect_insert

log = logging.getLogger("gateway.bootstrap")

MARKER = "bootstrap"
ADMIN_LOGIN = "admin"


async def run_bootstrap(auth: Auth) -> str | None:
    """The one-time admin password when this call created the admin, else None."""
    async with auth.engine.connect() as conn:
        done = (await conn.execute(select(gateway_markers.c.name).where(
            gateway_markers.c.name == MARKER))).first()
    if done is not None:
        return None
    password = passwords.generate_password()
    async with auth.svc.transaction() as conn:
        res = await conn.execute(dialect_insert(conn)(gateway_markers).values(
            name=MARKER, value="admin-created", created_at=auth.now()).on_conflict_do_nothing())
        if res.rowcount != 1:
            return None  # another replica won the race
        exists = (await conn.execute(select(users.c.user_id).where(
            users.c.login == ADMIN_LOGIN))).first()
        if exists is not None:
            return None
        await auth.create_user(login=ADMIN_LOGIN, role="admin", password=password,
                               created_by=None, must_change=True, conn=conn,
                               audit_kind="bootstrap.admin_created")
    log.warning("bootstrap: created the admin account; its one-time password is printed "
                "once on standard output and must be changed at first login")
    return password
