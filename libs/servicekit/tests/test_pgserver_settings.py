"""The embedded PostgreSQL keeps production's durability and gives its clients the socket."""

from __future__ import annotations

import asyncpg

from servicekit.testing.pgserver import PgServer, socket_dir_for


def test_the_embedded_server_keeps_fsync_and_synchronous_commit(tmp_path) -> None:
    server = PgServer(tmp_path / "pg")
    assert server.settings["fsync"] == "on"
    assert server.settings["synchronous_commit"] == "on"
    assert server.settings["unix_socket_directories"] == str(server.socket_dir)
    assert server.settings["unix_socket_permissions"] == "0700"


def test_a_data_folder_too_deep_for_a_socket_name_gets_a_short_stable_one(tmp_path) -> None:
    deep = tmp_path / ("d" * 120)
    short = socket_dir_for(deep)
    assert not short.is_relative_to(deep)
    assert len(str(short / ".s.PGSQL.65535")) <= 107
    assert socket_dir_for(deep) == short  # the same on the next start: clients keep the URL
    assert socket_dir_for(tmp_path) == tmp_path / "sock"


async def test_the_url_reaches_the_server_on_its_unix_socket(pg_server) -> None:
    conn = await asyncpg.connect(pg_server)
    try:
        on_socket = await conn.fetchval("SELECT inet_server_addr() IS NULL")
    finally:
        await conn.close()
    assert on_socket or "host=" not in pg_server  # an external MTE_TEST_PG_ADMIN_URL: TCP
