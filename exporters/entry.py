"""Console entry point of `rnnx`.

The base install is the edge runtime only; the CLI needs the `export` extra.
This shim says so in one line instead of a traceback.
"""

import sys


def main() -> None:
    try:
        import click  # noqa: F401
    except ImportError:
        sys.stderr.write("rnnx: the command line needs the export extra: pip install 'rnnx[export]'\n")
        raise SystemExit(2)
    from .cli import cli

    cli(prog_name="rnnx")


if __name__ == "__main__":
    main()
