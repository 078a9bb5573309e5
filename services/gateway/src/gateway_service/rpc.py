"""The gateway's RPC client: the kit's, with a reply that breaks its contract reported as
a bad gateway (502) instead of a validation error that would look like the caller's."""

from __future__ import annotations

from pydantic import ValidationError

from contracts.rpc import ErrorBody, RpcSpec
from servicekit.errors import RpcCallError
from servicekit.rpc import ReqT, RespT, RpcClient


class GatewayRpc(RpcClient):
    async def call(self, spec: RpcSpec[ReqT, RespT], request: ReqT, *,
                   timeout_s: float | None = None) -> RespT:
        try:
            return await super().call(spec, request, timeout_s=timeout_s)
        except ValidationError as exc:  # the request is a model already: it is the reply
            raise RpcCallError(ErrorBody(
                code="bad_service_reply", status=502,
                message=f"{spec.subject} answered with a reply that does not match its "
                        "contract")) from exc
