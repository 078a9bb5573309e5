"""The launcher's checks before it starts anything."""

from __future__ import annotations

import socket
from pathlib import Path

from launcher.stack import Stack, free_port, port_free


def test_a_port_is_taken_only_while_something_listens() -> None:
    port = free_port()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    assert not port_free(port)
    # a connection closed by the server side leaves the port in TIME_WAIT, as a service
    # that answered /readyz and stopped does
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()
    client.recv(1)
    client.close()
    server.close()
    assert port_free(port)


def test_replicas_share_the_service_database_and_bus_user_with_their_own_port(
        tmp_path: Path) -> None:
    stack = Stack(data_dir=tmp_path, replicas={"tasks": 2}, bus_auth=False,
                  database_urls={"tasks": "postgresql://u:p@127.0.0.1:1/mte_tasks"})
    assert stack.replica_names("tasks") == ["tasks", "tasks-2"]
    assert stack.replica_names("review") == ["review"]
    first, second = stack.env_for("tasks"), stack.env_for("tasks", 9123)
    assert first["TASKS_HTTP_PORT"] == str(stack.ports["tasks"]) and \
        second["TASKS_HTTP_PORT"] == "9123"
    assert first["TASKS_DATABASE_URL"] == second["TASKS_DATABASE_URL"]
    assert {k: v for k, v in first.items() if k != "TASKS_HTTP_PORT"} == \
        {k: v for k, v in second.items() if k != "TASKS_HTTP_PORT"}
