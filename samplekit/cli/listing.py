"""``samplekit list [KIND] [--json]``: registered components with the plugin that gave each, and the plugins
that failed to load."""

from __future__ import annotations

import json

import click

from samplekit.registry import KINDS


@click.command("list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per component: kind, name, plugin, summary, ...")
@click.pass_context
def list_command(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List registered components (of one KIND) with the plugin that gave each."""
    from samplekit.plugins import get_registry

    registry = get_registry()
    items = registry.available(kind)
    failures = {f.plugin: f.error for f in registry.failures}
    group = ctx.parent.command if ctx.parent is not None else None
    failures.update({f.plugin: f.error for f in getattr(group, "command_failures", ()) if f.plugin not in failures})
    if as_json:
        payload = {
            "components": [c.as_dict() for c in items],
            "failed_plugins": [{"plugin": p, "error": e} for p, e in failures.items()],
        }
        click.echo(json.dumps(payload, indent=1))
        return
    width = max((len(c.name) for c in items), default=4)
    pwidth = max((len(c.plugin) for c in items), default=6)
    current = None
    for c in items:
        if c.kind != current:
            current = c.kind
            click.echo(click.style(f"{c.kind}s", bold=True))
        click.echo(f"  {c.name:<{width}}  {c.plugin:<{pwidth}}  {c.summary}")
    for plugin, error in failures.items():
        click.echo(click.style(f"plugin {plugin} failed to load: {error}", fg="yellow"), err=True)
