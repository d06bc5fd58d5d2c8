"""The `rnnx bench` command (registered in cli.py)."""

from __future__ import annotations

from pathlib import Path

import click

from .base import one_line_errors


@click.command("bench")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--keras", "keras_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The Keras model the files were exported from: parity vs Keras, and the TensorFlow "
                   "(model(x), tf.function, XLA, predict_on_batch) and LiteRT baselines.")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Test set: a .npz with 'x' (samples, steps, ...) and integer labels 'y' (class "
                   "indices of the model). Default: random inputs of the model's own length and declared "
                   "range (no accuracy); the summary says which.")
@click.option("--providers", default=None,
              help="Comma-separated execution providers, e.g. cpu,cuda. Default: cpu, and cuda when "
                   "available; a provider named here that cannot run is an error.")
@click.option("--batch", "batches", default="1,64,256", show_default=True,
              help="Batch sizes: 1 gives latency, larger ones throughput.")
@click.option("--threads", default="1,all", show_default=True,
              help="Thread settings: integers or 'all' (the usable cores).")
@click.option("--reps", default=300, show_default=True, type=click.IntRange(min=1),
              help="Timed calls per engine and comparison, spread over the rounds (throughput: a tenth).")
@click.option("--rounds", default=15, show_default=True, type=click.IntRange(min=1),
              help="Interleaved rounds: every engine of a comparison runs one block of calls per round; "
                   "ratios are medians of the per-round ratios with a 95% interval.")
@click.option("--block-ms", default=20.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="A block of calls stops growing beyond this many milliseconds.")
@click.option("--streams", default="1,8,64,256", show_default=True,
              help="Stream counts for StreamingModel.step of stream/unrolled files ('' : none).")
@click.option("--sweep", default="1,8,model,100,500", show_default=True,
              help="Sequence lengths for the batch-1 latency sweep on the fewest threads; 'model' is the "
                   "data's own length ('' : no sweep).")
@click.option("--no-litert", is_flag=True, default=False, help="Skip the LiteRT baseline.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every figure here (JSON, written atomically).")
@one_line_errors
def bench_command(target, keras_file, data, providers, batches, threads, reps, rounds, block_ms, streams, sweep,
                  no_litert, json_out):
    """Benchmark TARGET (a model directory of rnnx exports, or one .onnx file).

    Every variant and precision file is run on each provider: accuracy and parity
    against Keras, latency p50/p90/p99 at batch 1, throughput at larger batches
    with each thread setting, per-stream step cost, latency against sequence
    length, size and load time, next to the TensorFlow and LiteRT baselines on the
    same inputs. Engines compared with each other are timed interleaved in rounds;
    each speed-up is a median of per-round ratios with its 95% interval, and the
    machine's load is recorded. Progress goes to stderr, a summary to stdout.
    """
    from ..atomic import check_writable, write_json
    from ..bench import benchmark
    from ..bench.data import load_npz
    from ..bench.text import render

    if json_out is not None:
        check_writable(json_out.parent)    # before minutes of timing, not after
    x, y = load_npz(data) if data is not None else (None, None)
    result = benchmark(target, keras=keras_file, x=x, y=y,
                       providers=providers.split(",") if providers else None,
                       strict_providers=providers is not None, batches=batches, threads=threads,
                       reps=reps, rounds=rounds, block_ms=block_ms, streams=streams or [], sweep=sweep or [],
                       litert=not no_litert,
                       progress=lambda msg: click.echo(f"rnnx bench: {msg}", err=True))
    if json_out is not None:
        write_json(json_out, result)       # the one atomic writer makes the folders (OutputError on failure)
    click.echo(render(result))
    if json_out is not None:
        click.echo(f"wrote {json_out}")
