"""The `rnnx` command line (click).

Every command turns an `RnnxError` into one line on stderr and exit code 1;
commands live beside the library function they wrap and register here.
"""

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


def _register() -> None:
    from .bench_cmd import bench_command
    from .export_cmd import export_command, inspect_command
    from .quantize_cmd import quantize_command

    cli.add_command(bench_command)
    cli.add_command(export_command)
    cli.add_command(inspect_command)
    cli.add_command(quantize_command)


_register()
