"""The `rnnx` command group and the one-line error wrapper every command uses."""

from __future__ import annotations

import functools
import sys

import click

from runtime.errors import RnnxError


def one_line_errors(func):
    """Run a command body; print an RnnxError as `rnnx: <message>` and exit 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RnnxError as exc:
            click.echo(f"rnnx: {type(exc).__name__}: {exc}", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnx")
def cli() -> None:
    """rnnx: take Keras recurrent models to the edge with ONNX."""
