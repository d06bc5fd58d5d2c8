"""The `rnnx export` and `rnnx inspect` commands (registered in cli.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .base import one_line_errors

# TensorFlow prints oneDNN and absl notices on stderr when it loads, before any
# log level applies; the CLI promises one line per error there. Set before TF loads
# (commands import it lazily); a value the user chose is kept.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _variants(ctx, param, value):
    from runtime.contract import VARIANTS as allowed   # here: `rnnx --help` loads no onnxruntime

    if value is None:
        return None
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in names if v not in allowed]
    if not names or bad:
        raise click.BadParameter(f"expected a comma-separated subset of {','.join(allowed)}; got {value!r}")
    return names


@click.command("export")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Directory for full.onnx, stream.onnx, unrolled.onnx and export.json (created if missing).")
@click.option("--variants", default=None, callback=_variants,
              help="Comma-separated variants: full (whole sequence per call), stream (chunk of steps plus "
                   "explicit states), unrolled (stream without RNN/loop ops). Default: every variant the "
                   "model supports (the others are named on stderr with the reason); a variant asked for "
                   "here that cannot be made fails the command.")
@click.option("--chunk", default=1, show_default=True, type=click.IntRange(min=1),
              help="Time steps per call of the stream and unrolled variants.")
@click.option("--opset", default=17, show_default=True, type=int, help="ONNX opset of the exported models.")
@click.option("--atol", default=1e-5, show_default=True, type=float,
              help="Largest |onnx - keras| accepted on the output during validation.")
@click.option("--samples", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Validation inputs: a .npz with array 'x' shaped (N, T, ...), or one array per input "
                   "name for a model with several inputs (and optional 'y'). Default: shaped random data.")
@click.option("--labels", default=None,
              help="Class labels stored in the metadata: 'a,b,c' or a .txt file with one label per line.")
@click.option("--uint8-scale", is_flag=True, default=False,
              help="Record that inputs are uint8 images the app scales by 1/255 before the model.")
@click.option("--ort", "ort", is_flag=True, default=False,
              help="Also write <variant>.ort (ORT format: onnxruntime Mobile, minimal builds) and "
                   "required_operators.config (the operators a reduced onnxruntime build needs).")
@click.option("--frame-rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Input frames per second (e.g. 100 for 10 ms audio frames): a stream's latency is also "
                   "reported in milliseconds, and kept in the metadata.")
@one_line_errors
def export_command(model, out_dir, variants, chunk, opset, atol, samples, labels, uint8_scale, ort, frame_rate):
    """Export MODEL (a .keras file) to ONNX, validate every variant against Keras, write export.json.

    Progress goes to stderr; the paths written go to stdout. A variant that misses
    the tolerance fails the command and leaves no model file behind; the folder
    keeps its previous export set whole.
    """
    from ..export import export_model

    res = export_model(model, out_dir, variants=variants, chunk=chunk, opset=opset, atol=atol,
                       samples=samples, labels=labels, uint8_scale=True if uint8_scale else None,
                       frame_rate=frame_rate, ort=ort, progress=lambda msg: click.echo(f"rnnx export: {msg}", err=True))
    for variant, path in res.paths.items():
        parity = res.report["variants"][variant]["parity"]
        click.echo(f"{variant}\t{path}\tmax|d|={parity['max_abs_diff']:.3g}")
    _echo_edge(Path(out_dir), res.report)


def _echo_edge(folder: Path, report: dict) -> None:
    edge = report.get("edge")
    if edge:
        for onnx_name, ort_name in edge["ort"].items():
            click.echo(f"ort\t{folder / ort_name}\tfrom {onnx_name}")
        click.echo(f"operators\t{folder / edge['operator_config']}\t{edge['operators']} operators")
        if edge.get("selftest"):
            click.echo(f"selftest\t{folder / edge['selftest']}\tpython -m runtime --selftest {folder}")


@click.command("pack")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--keras", "keras_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The Keras model the set was exported from: the self-test vectors hold its outputs "
                   "(default: the set's full.onnx's).")
@one_line_errors
def pack_command(folder, keras_file):
    """Add ORT-format copies (<variant>.ort), required_operators.config and selftest.npz to the
    export set in FOLDER.

    For onnxruntime Mobile and minimal builds (build onnxruntime with
    --include_ops_by_config FOLDER/required_operators.config); `python -m runtime --selftest
    FOLDER` then checks every file on the device. The files join the set atomically and are
    listed with their sha256 in export.json.
    """
    from ..edge import pack

    report = pack(folder, keras=keras_file, progress=lambda msg: click.echo(f"rnnx pack: {msg}", err=True))
    _echo_edge(folder, report)


@click.command("inspect")
@click.argument("onnx_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the description as JSON.")
@one_line_errors
def inspect_command(onnx_file, as_json):
    """Show ONNX_FILE's inputs and outputs (names, shapes, dtypes), op counts and rnnx metadata."""
    from ..inspect_onnx import describe, render

    info = describe(onnx_file)
    click.echo(json.dumps(info, indent=2) if as_json else render(info))
