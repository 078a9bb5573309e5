"""The launcher's checks before it starts anything."""

from __future__ import annotations

import socket

from launcher.stack import free_port, port_free


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
