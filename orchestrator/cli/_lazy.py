"""Command groups that import a command's module only when that command runs.

A group lists each lazy command with its summary (the first paragraph of its help), so that
``orchestrator --help`` and ``--version`` import no command module and none of the model,
graph or MCP code behind them; pip keeps the same table for its commands for the same reason.
``tests/test_lazy_imports.py`` checks every summary against the command's own help.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    # typer ships its own copy of click; its Group methods are typed with these classes.
    from typer import _click

__all__ = ["Lazy", "LazyGroup", "command_group", "load_command"]


@dataclass(frozen=True)
class Lazy:
    """A command kept in another module until it runs."""

    target: str
    """``module:attribute``: a command function, or a ``typer.Typer`` for a command group."""
    summary: str
    """What the parent group's command list shows: the first paragraph of the command's help."""


def load_command(name: str, target: str) -> _click.Command:
    """Import ``target`` and build the click command typer would have built for it."""
    module_name, _, attribute = target.partition(":")
    found = getattr(importlib.import_module(module_name), attribute)
    if isinstance(found, typer.Typer):
        # A group even with one command (typer's get_command would flatten it).
        command: _click.Command = typer.main.get_group(found)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(found)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _Placeholder(TyperCommand):
    """Stands in a group's command list for a command whose module is not imported yet."""

    def __init__(self, name: str, entry: Lazy, group: TyperGroup) -> None:
        super().__init__(name, help=entry.summary, rich_markup_mode=group.rich_markup_mode)
        self.target = entry.target


class LazyGroup(TyperGroup):
    """A typer group whose commands in ``lazy`` load when they are resolved to run."""

    lazy: ClassVar[Mapping[str, Lazy]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in self.lazy.items():
            self.commands.setdefault(name, _Placeholder(name, entry, self))

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, _Placeholder):
            command = self.commands[name] = load_command(name, command.target)
        return name, command, rest


def command_group(
    help: str, lazy: Mapping[str, Lazy] | None = None, **settings: Any
) -> typer.Typer:
    """A typer app for a command group; the commands in ``lazy`` load on first use."""

    class Group(LazyGroup):
        pass

    Group.lazy = dict(lazy or {})
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False, cls=Group, **settings)
