"""Shared contracts of the Microtask Engine bus.

Everything two services need to agree on lives here and only here: the event
envelope, versioned event payloads, RPC request/response models, subject names
and the JetStream stream definitions.
"""

from contracts.envelope import Envelope, new_envelope

__all__ = ["Envelope", "new_envelope"]
