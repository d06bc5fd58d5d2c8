"""The README's supported-layer table is the registry's, as `rnnx layers --markdown` prints it."""

from pathlib import Path

BEGIN, END = "<!-- rnnx layers --markdown -->", "<!-- end rnnx layers -->"


def test_readme_table_matches_the_registry():
    from exporters.cli.layers import render
    from exporters.graph.registry import table

    text = (Path(__file__).parent.parent / "README.md").read_text()
    shown = text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()
    assert shown == render(table(), markdown=True), (
        "README's supported-layer table is out of date: paste `rnnx layers --markdown` between its markers")
