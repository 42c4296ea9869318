"""The device side of the HTTP sync API: a :class:`signalos_core.offline.SyncTransport` over an ``httpx.Client``.

Failures never reject actions: a connection that could not be made is an unambiguous transport error; a timeout
or a lost/5xx response is ambiguous (the server may have applied the batch, and dedupes the resend by action
id); 401/403 mean "fix the session or device first" and leave the queue untouched.
"""

from __future__ import annotations

from typing import TypeVar

import httpx
import msgspec

from signalos_core.offline import PullRequest, PullResponse, PushRequest, PushResponse, SyncTransportError

__all__ = ["HttpSyncTransport"]

_T = TypeVar("_T")


class HttpSyncTransport:
    """Push and pull through ``/api/sync`` with a bearer token (``client`` may be a Litestar TestClient)."""

    def __init__(
        self, client: httpx.Client, access_token: str, *, base_path: str = "/api/sync", account_id: str | None = None
    ) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        self._base = base_path.rstrip("/")
        # With a trading account, every pushed order is checked against that account's current compliance mode.
        self._push_params = {"account_id": account_id} if account_id else None

    def push(self, request: PushRequest) -> PushResponse:
        """POST one batch."""
        return self._call("POST", "/push", msgspec.json.encode(request), self._push_params, PushResponse)

    def pull(self, request: PullRequest) -> PullResponse:
        """GET outcomes after the cursor and the state."""
        params = {"device_id": request.device_id, "cursor": str(request.cursor), "limit": str(request.limit)}
        return self._call("GET", "/pull", None, params, PullResponse)

    def _call(self, method: str, path: str, body: bytes | None, params: dict[str, str] | None, kind: type[_T]) -> _T:
        try:
            response = self._client.request(
                method, self._base + path, content=body, params=params, headers=self._headers
            )
        except httpx.ConnectError as exc:
            raise SyncTransportError(f"cannot reach the server: {exc}", ambiguous=False, cause="offline") from exc
        except httpx.TransportError as exc:  # timeouts, resets after sending: the request may have arrived
            raise SyncTransportError(f"{type(exc).__name__}: {exc}", ambiguous=True, cause="network") from exc
        if response.status_code != 200:
            code = _problem_code(response)
            raise SyncTransportError(
                f"HTTP {response.status_code} {code}: {response.text[:300]}",
                ambiguous=response.status_code >= 500,
                cause=f"http_{response.status_code}_{code}",
            )
        try:
            return msgspec.json.decode(response.content, type=kind)
        except msgspec.ValidationError as exc:
            raise SyncTransportError(f"unexpected response: {exc}", ambiguous=True, cause="protocol") from exc


def _problem_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return "unknown"
    return str(body.get("code", "unknown")) if isinstance(body, dict) else "unknown"
