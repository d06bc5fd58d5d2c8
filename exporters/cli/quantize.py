"""The `rnnx quantize` command (registered in cli.py)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click

from ..quant_modes import REGISTRY
from .base import one_line_errors


@click.command("quantize")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mode", required=True,
              help=", ".join(f"{name} ({m.summary})" for name, m in REGISTRY.items()) + ".")
@click.option("--out", "out_file", required=True, type=click.Path(path_type=Path),
              help="The quantized .onnx file to write.")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Calibration samples for int8-static: a .npz with array 'x' shaped like the model input "
                   "(N, T, ...). Stream/unrolled models get their states from the fp32 model, chunk by chunk.")
@click.option("--calibration-method", default="minmax", show_default=True,
              help="int8-static calibrator: minmax, entropy or percentile.")
@click.option("--per-channel", is_flag=True, default=False, help="Per-channel weight scales (int8 modes).")
@click.option("--reduce-range/--full-range", default=True, show_default=True,
              help="int8 modes: 7-bit weights, which x86 CPUs without VNNI (AVX2) need to avoid int16 "
                   "saturation; --full-range keeps 8 bits for devices with VNNI or ARM dot-product kernels.")
@click.option("--eval", "evaluation", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Evaluation samples: a .npz with 'x' and integer labels 'y'. Enables the accuracy gate.")
@click.option("--max-drop", default=1.0, show_default=True, type=float,
              help="Largest accepted accuracy drop against fp32, in percentage points (needs --eval).")
@click.option("--mixed", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
              help="auto: when quantizing every layer misses --max-drop, keep the most sensitive layers in "
                   "fp32 one at a time until the gate holds (precision 'mixed'); off: all or nothing.")
@click.option("--allow-larger", is_flag=True, default=False,
              help="Accept a quantized file larger than the fp32 one (an error otherwise).")
@click.option("--force", is_flag=True, default=False, help="Replace --out if it exists.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the whole report as JSON.")
@one_line_errors
def quantize_command(model, mode, out_file, calibration, calibration_method, per_channel, reduce_range,
                     evaluation, max_drop, mixed, allow_larger, force, as_json):
    """Quantize MODEL (an rnnx .onnx export) and check what it costs in accuracy.

    Prints size before/after, latency, max |Δ| and argmax agreement against fp32,
    and with --eval the accuracy of both. When quantizing every layer drops more
    than --max-drop, the most sensitive layers stay fp32 (--mixed auto); if even
    that misses the gate the command fails and writes nothing. Notes (e.g. a GRU
    op that stays float) go to stderr.
    """
    from ..quantize import quantize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report carries every warning; printed below
        report = quantize_model(model, out_file, mode, calibration=calibration, per_channel=per_channel,
                                reduce_range=reduce_range,
                                method=calibration_method, evaluation=evaluation, max_drop=max_drop,
                                force=force, mixed=mixed, allow_larger=allow_larger,
                                progress=lambda msg: click.echo(f"rnnx quantize: {msg}", err=True))
    for text in report["warnings"]:
        click.echo(f"rnnx quantize: warning: {text}", err=True)
    for text in report["notes"]:
        click.echo(f"rnnx quantize: note: {text}", err=True)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo(summary(report))


def summary(report: dict) -> str:
    """One line: mode, file, size, latency, recurrent weights, layers kept float, agreement, accuracy."""
    size, agree, acc = report["size"], report["agreement"], report["accuracy"]
    parts = [report["mode"], report["output"],
             f"size {size['fp32_bytes']} -> {size['bytes']} bytes ({size['ratio']:.0%})"]
    lat = report.get("latency")
    if lat:
        parts.append(f"latency {lat['fp32_ms']:.3g} -> {lat['ms']:.3g} ms")
    parts.append(f"recurrent weights {report['recurrent_weights']}")
    if report.get("kept_float"):
        parts.append(f"precision mixed: fp32 {','.join(report['kept_float'])}")
    parts.append(f"max|d| {agree['max_abs_diff']:.3g} vs fp32 on {agree['samples']} {agree['data']} samples")
    if agree["argmax_agreement"] is not None:
        parts.append(f"argmax agreement {agree['argmax_agreement']:.4f}")
    if acc is not None:
        parts.append(f"accuracy {acc['fp32']:.4f} -> {acc['quantized']:.4f} "
                     f"(drop {acc['drop_points']:.2f} pts, max {acc['max_drop']:g})")
    return "\t".join(parts)
