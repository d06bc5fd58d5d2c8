"""The `rnnx layers` command: the supported-layer table, generated from the handler registry."""

from __future__ import annotations

import json

import click

from .base import one_line_errors


def render(rows: list[dict], markdown: bool) -> str:
    """The table as aligned text, or as a Markdown table (the README's)."""
    if markdown:
        lines = ["| Keras layer or operation | variants | emitted as |", "|---|---|---|"]
        lines += [f"| `{r['layer']}` | {', '.join(r['variants'])} | {r['summary']} |" for r in rows]
        return "\n".join(lines)
    width = max(len(r["layer"]) for r in rows)
    return "\n".join(f"{r['layer']:<{width}}  {','.join(r['variants']):<21}  {r['summary']}" for r in rows)


@click.command("layers")
@click.option("--markdown", is_flag=True, default=False, help="Print a Markdown table (as in the README).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the table as JSON.")
@one_line_errors
def layers_command(markdown, as_json):
    """List the Keras layers and operations rnnx exports natively and the variants each allows.

    Keras operations (`keras.ops.*`, `h[:, -1]`, `h * 2`) are listed as
    `ops.<Name>`. A layer may still refuse a variant for its settings (e.g.
    padding='same' cannot stream); `rnnx export` names the layer and the reason.
    Layers not listed go through tf2onnx for `full` only. Register your own with
    `exporters.graph.register_layer`.
    """
    from ..graph.registry import table

    rows = table()
    click.echo(json.dumps(rows, indent=2) if as_json else render(rows, markdown))
