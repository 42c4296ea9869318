"""Entry point of the ``signalos`` command.

Subcommands live in their area's module and are imported only when invoked, so ``signalos parse`` does not
pay for importing the web service. Exit codes: 0 success, 1 unexpected failure, 2 bad input or usage,
3 a compliance check denied (``signalos check``), other codes as documented per command.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute" of a click.Command; each area registers its commands here.
_COMMANDS: dict[str, str] = {
    "version": "service.cli.core:version",
    "serve": "service.cli.core:serve",
    "db": "service.cli.core:db",
    "users": "service.cli.core:users",
    "secrets": "service.cli.core:secrets_group",
    "marketplace": "service.cli.marketplace:marketplace",
    "audit": "service.cli.audit:audit",
    "keys": "service.cli.twofactor:keys",
    "twofactor": "service.cli.twofactor:twofactor",
    "parse": "service.cli.parsing:parse_cmd",
    "parse-eval": "service.cli.parsing:parse_eval_cmd",
    "plugin": "service.cli.plugins:plugin",
    "profiles": "service.cli.compliance:profiles",
    "check": "service.cli.compliance:check",
    "observe": "service.cli.compliance:observe",
    "onboarding": "service.cli.onboarding:onboarding",
    "offline": "service.cli.offline:offline",
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command: Any = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):  # pragma: no cover - programming error
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """SignalOS Core: compliance engine, signal parser, offline sync, plugins and the HTTP service."""


def main() -> None:
    """Run the ``signalos`` command line."""
    cli(prog_name="signalos")
