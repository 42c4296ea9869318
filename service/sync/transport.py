"""The device side of the HTTP sync API: a :class:`signalos_core.offline.SyncTransport` over an ``httpx.Client``.

Failures never reject actions on their own: a connection that could not be made is an unambiguous transport
error; a timeout or a lost/5xx response is ambiguous (the server may have applied the batch, and dedupes the
resend by action id); 401 first refreshes the token (when a ``refresh`` callback is given) and retries once;
403 means "fix the session or device first". A push refused as invalid (400/413/422) raises
:class:`~signalos_core.offline.BatchRefusedError` so the engine can bisect it; 409 ``device_fork`` raises
:class:`~signalos_core.offline.DeviceForkError` (re-register the device).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

import httpx
import msgspec

from signalos_core.offline import (
    BatchRefusedError,
    DeviceForkError,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    SyncTransportError,
)

__all__ = ["HttpSyncTransport"]

_T = TypeVar("_T")
#: Statuses meaning "this request's content is refused" (nothing applied): the engine bisects the batch.
_REFUSED: Final = frozenset({400, 413, 422})


class HttpSyncTransport:
    """Push and pull through ``/api/sync`` with a bearer token (``client`` may be a Litestar TestClient)."""

    def __init__(
        self,
        client: httpx.Client,
        access_token: str,
        *,
        base_path: str = "/api/sync",
        account_id: str | None = None,
        refresh: Callable[[], str] | None = None,
    ) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        #: Called on a 401 to get a new access token (e.g. with the refresh token); the request is retried once.
        self._refresh = refresh
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

    def _send(self, method: str, path: str, body: bytes | None, params: dict[str, str] | None) -> httpx.Response:
        try:
            return self._client.request(method, self._base + path, content=body, params=params, headers=self._headers)
        except httpx.ConnectError as exc:
            raise SyncTransportError(f"cannot reach the server: {exc}", ambiguous=False, cause="offline") from exc
        except httpx.TransportError as exc:  # timeouts, resets after sending: the request may have arrived
            raise SyncTransportError(f"{type(exc).__name__}: {exc}", ambiguous=True, cause="network") from exc

    def _call(self, method: str, path: str, body: bytes | None, params: dict[str, str] | None, kind: type[_T]) -> _T:
        response = self._send(method, path, body, params)
        if response.status_code == 401 and self._refresh is not None:
            # An expired access token is not the actions' fault: refresh and try once more (never reject).
            self._headers["Authorization"] = f"Bearer {self._refresh()}"
            response = self._send(method, path, body, params)
        if response.status_code != 200:
            code, detail = _problem(response)
            if response.status_code == 409 and code == "device_fork":
                fork = _fork_facts(response)
                raise DeviceForkError(
                    detail or "another installation uses this device id", device_id=fork.device_id, seq=fork.seq
                )
            if method == "POST" and response.status_code in _REFUSED:
                raise BatchRefusedError(
                    f"HTTP {response.status_code} {code}: {detail}", status=response.status_code, code=code,
                    detail=detail,
                )  # fmt: skip
            raise SyncTransportError(
                f"HTTP {response.status_code} {code}: {response.text[:300]}",
                ambiguous=response.status_code >= 500,
                cause=f"http_{response.status_code}_{code}",
            )
        try:
            return msgspec.json.decode(response.content, type=kind)
        except msgspec.ValidationError as exc:
            raise SyncTransportError(f"unexpected response: {exc}", ambiguous=True, cause="protocol") from exc


def _problem(response: httpx.Response) -> tuple[str, str]:
    """The problem+json ``code`` and ``detail`` (with field errors, if any) of an error response."""
    try:
        body = response.json()
    except ValueError:
        return "unknown", response.text[:300]
    if not isinstance(body, dict):
        return "unknown", response.text[:300]
    detail = str(body.get("detail") or body.get("title") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        detail = f"{detail} {msgspec.json.encode(errors).decode()[:400]}".strip()
    return str(body.get("code", "unknown")), detail


class _Fork(msgspec.Struct, frozen=True):
    device_id: str = ""
    seq: int | None = None


def _fork_facts(response: httpx.Response) -> _Fork:
    """``device_id`` and ``seq`` of a ``device_fork`` problem (empty when the body does not carry them)."""
    try:
        return msgspec.json.decode(response.content, type=_Fork)
    except msgspec.MsgspecError:
        return _Fork()
