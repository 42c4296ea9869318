"""``signalos marketplace``: talk to a SignalOS server's marketplace (publish, search, show, install).

Every command prints one JSON document. Exit codes: 0 success, 2 bad input (usage, unreadable file),
4 the server refused (its problem+json is printed), 6 the server could not be reached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

__all__ = ["marketplace"]

EXIT_REFUSED = 4
EXIT_UNREACHABLE = 6


def _emit(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=str))


def _request(ctx: click.Context, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    url: str = ctx.obj["url"].rstrip("/")
    headers = {"Authorization": f"Bearer {ctx.obj['token']}"} if ctx.obj["token"] else {}
    headers.update(kwargs.pop("headers", {}))
    try:
        response = httpx.request(method, f"{url}{path}", headers=headers, timeout=60, **kwargs)
    except httpx.HTTPError as exc:
        _exit({"error": "unreachable", "detail": str(exc), "url": url}, EXIT_UNREACHABLE)
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {"status": response.status_code, "detail": response.text[:500]}
        _exit(body, EXIT_REFUSED)
    return response.json()


def _exit(document: Any, code: int) -> NoReturn:
    _emit(document)
    sys.exit(code)


@click.group()
@click.option(
    "--url",
    envvar="SIGNALOS_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Base URL of the SignalOS server (or SIGNALOS_URL).",
)
@click.option("--token", envvar="SIGNALOS_TOKEN", default="", help="Access token (or SIGNALOS_TOKEN).")
@click.pass_context
def marketplace(ctx: click.Context, url: str, token: str) -> None:
    """Publish, search, inspect and install plugins on a SignalOS server."""
    ctx.obj = {"url": url, "token": token}


@marketplace.command("publish")
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def publish(ctx: click.Context, package: Path) -> None:
    """Upload a signed PACKAGE (from `signalos plugin pack` + `sign`); the server verifies it."""
    _emit(
        _request(
            ctx,
            "POST",
            "/api/marketplace/versions",
            content=package.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
    )


@marketplace.command("search")
@click.argument("text", required=False)
@click.option("--kind", type=click.Choice(["parser", "strategy", "provider"]), default=None)
@click.option("--compatible/--any-host", default=True, show_default=True, help="Only versions this server can run.")
@click.option("--sort", type=click.Choice(["rating", "installs", "updated"]), default="rating", show_default=True)
@click.pass_context
def search(ctx: click.Context, text: str | None, kind: str | None, compatible: bool, sort: str) -> None:
    """Search listed plugins."""
    params = {"sort": sort, "compatible": str(compatible).lower()}
    if text:
        params["q"] = text
    if kind:
        params["kind"] = kind
    _emit(_request(ctx, "GET", "/api/marketplace/plugins", params=params))


@marketplace.command("show")
@click.argument("plugin_id")
@click.pass_context
def show(ctx: click.Context, plugin_id: str) -> None:
    """Show a plugin's versions, permissions and reviews."""
    _emit(_request(ctx, "GET", f"/api/marketplace/plugins/{plugin_id}"))


@marketplace.command("install")
@click.argument("plugin_id")
@click.option("--account", "account_id", required=True, help="Trading account id to install on.")
@click.option("--version", default=None, help="A specific version (default: newest compatible).")
@click.option("--activate/--no-activate", default=True, show_default=True, help="Start it in its sandbox.")
@click.pass_context
def install(ctx: click.Context, plugin_id: str, account_id: str, version: str | None, activate: bool) -> None:
    """Install PLUGIN_ID on a trading account (and activate it)."""
    body: dict[str, Any] = {"plugin_id": plugin_id, "account_id": account_id}
    if version:
        body["version"] = version
    record = _request(ctx, "POST", "/api/marketplace/installs", json=body)
    if activate:
        record = _request(ctx, "POST", f"/api/marketplace/installs/{record['id']}/activate")
    _emit(record)
