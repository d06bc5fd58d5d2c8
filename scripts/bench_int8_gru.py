"""Prototype int8 GRU graphs and measure them against the fp32 full GRU (prints figures; not a test).

onnxruntime has no quantized GRU op, so an int8 GRU is a graph of plain ops.
This script builds candidate graphs with ``onnx.helper`` from a trained Keras
GRU(units) + Dense softmax (the pipeline's ``gru`` model: 28 rows of 28
pixels), checks each against Keras, measures its accuracy on the model's test
split and its latency (batch 1) and throughput (batch 256) on one thread,
timed interleaved in rounds with the fp32 reference (``exporters.bench.rounds``),
and says which candidate, if any, is worth shipping: faster than the fp32 full
GRU at the model's length with an accuracy drop <= 0.5 points.

Candidates (T = the model's length, every recurrence written out step by step):

- ``fp32 native GRU``: one ONNX ``GRU`` op (what rnnx's full variant emits), the reference;
- ``fp32 unrolled, hoisted``: the input projection of all T steps as one MatMul, then per step
  one MatMul for the recurrence and the gate ops;
- ``int8 hoisted in-proj``: the same, the input projection int8 (``DynamicQuantizeMatMul``);
- ``int8 dyn rec``: int8 input projection and int8 recurrence per step (``DynamicQuantizeMatMul``:
  h quantized on the fly);
- ``int8 static-h rec``: int8 recurrence with a fixed h scale (a GRU's h stays in [-1, 1]):
  ``QuantizeLinear`` + ``MatMulIntegerToFloat`` per step, no per-step range search;
- the pipeline's ``unrolled.int8-dynamic.onnx`` and ``stream.int8-dynamic.onnx`` when ``--dir`` holds
  them (the quantize stage's graphs, fed chunk by chunk through ``runtime``).

    python scripts/bench_int8_gru.py models/gru.keras [--dir models/onnx/gru] [--rounds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MAX_DROP = 0.5
MS = "com.microsoft"


def gru_weights(path: Path) -> dict:
    """kernel (F, 3H), recurrent (H, 3H), input/recurrent biases (3H), dense (H, C) and (C) of a Keras GRU model."""
    import keras

    model = keras.models.load_model(path, compile=False)
    gru = next(layer for layer in model.layers if layer.__class__.__name__ == "GRU")
    dense = next(layer for layer in model.layers if layer.__class__.__name__ == "Dense")
    if not gru.reset_after:
        raise SystemExit("bench_int8_gru: the candidates assume reset_after=True (Keras 3's default)")
    kernel, recurrent, bias = gru.get_weights()
    bias = bias.reshape(2, -1)
    steps = model.inputs[0].shape[1]
    return {"W": kernel, "U": recurrent, "b_in": bias[0], "b_rec": bias[1], "Wd": dense.get_weights()[0],
            "bd": dense.get_weights()[1], "units": gru.units, "steps": steps, "features": kernel.shape[0],
            "model": model}


def _q8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-column int8 weights and their scales."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-8) / 127.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


def build(kind: str, w: dict):
    """The ONNX model of candidate ``kind`` (input x (N, T, F) -> y (N, classes))."""
    from onnx import TensorProto, helper, numpy_helper

    H, T, F = w["units"], w["steps"], w["features"]
    C = w["Wd"].shape[1]
    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(op, inputs, outputs, domain="", **attrs):
        nodes.append(helper.make_node(op, inputs, outputs, domain=domain, **attrs))
        return outputs[0]

    if kind == "fp32 native GRU":
        # ONNX GRU gates are z, r, h like Keras; linear_before_reset=1 is Keras' reset_after
        W = w["W"].T[None]                          # (1, 3H, F)
        R = w["U"].T[None]
        B = np.concatenate([w["b_in"], w["b_rec"]])[None]
        xt = node("Transpose", ["x"], ["xt"], perm=[1, 0, 2])
        node("GRU", [xt, const("W", W), const("R", R), const("B", B)], ["", "h_last"], hidden_size=H,
             linear_before_reset=1)
        h = node("Squeeze", ["h_last", const("ax0", np.array([0], np.int64))], ["h_T"])
    else:
        if kind == "fp32 unrolled, hoisted":
            xp = node("MatMul", ["x", const("W", w["W"])], ["xp0"])
            xp = node("Add", [xp, const("b_in", w["b_in"])], ["xp"])
        else:
            wq, ws = _q8(w["W"])
            xp = node("DynamicQuantizeMatMul", ["x", const("Wq", wq), const("Ws", ws), "",
                                                 const("b_in", w["b_in"])], ["xp"], domain=MS)
        uq, us = _q8(w["U"])
        split2 = const("split_2h_h", np.array([2 * H, H], np.int64))
        split_zr = const("split_h_h", np.array([H, H], np.int64))
        if kind == "int8 static-h rec":
            h_scale = const("h_scale", np.float32(1.0 / 127.5))
            h_zp = const("h_zp", np.uint8(128))
            zero = const("u_zp", np.zeros(3 * H, np.int8))
            u = const("Uq", uq)
            us_name = const("Us", us)
            b_rec = const("b_rec", w["b_rec"])
        elif kind.startswith("int8 dyn"):
            u, us_name, b_rec = const("Uq", uq), const("Us", us), const("b_rec", w["b_rec"])
        else:
            u, b_rec = const("U", w["U"]), const("b_rec", w["b_rec"])
        # h0 = zeros (N, H), built from x's batch size
        shape = node("Shape", ["x"], ["x_shape"])
        n = node("Slice", [shape, const("s0", np.array([0], np.int64)), const("s1", np.array([1], np.int64))], ["n"])
        hshape = node("Concat", [n, const("hdim", np.array([H], np.int64))], ["h_shape"], axis=0)
        h = node("ConstantOfShape", [hshape], ["h0"], value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]))
        for t in range(T):
            xt = node("Gather", [xp, const(f"t{t}", np.int64(t))], [f"x_{t}"], axis=1)
            if kind == "int8 static-h rec":
                hq = node("QuantizeLinear", [h, h_scale, h_zp], [f"hq_{t}"])
                rec = node("MatMulIntegerToFloat", [hq, u, h_scale, us_name, h_zp, zero, b_rec], [f"rec_{t}"],
                           domain=MS)
            elif kind.startswith("int8 dyn"):
                rec = node("DynamicQuantizeMatMul", [h, u, us_name, "", b_rec], [f"rec_{t}"], domain=MS)
            else:
                rec = node("Add", [node("MatMul", [h, u], [f"rm_{t}"]), b_rec], [f"rec_{t}"])
            nodes.append(helper.make_node("Split", [xt, split2], [f"xzr_{t}", f"xh_{t}"], axis=1))
            nodes.append(helper.make_node("Split", [rec, split2], [f"rzr_{t}", f"rh_{t}"], axis=1))
            zr = node("Sigmoid", [node("Add", [f"xzr_{t}", f"rzr_{t}"], [f"szr_{t}"])], [f"zr_{t}"])
            nodes.append(helper.make_node("Split", [zr, split_zr], [f"z_{t}", f"r_{t}"], axis=1))
            hh = node("Tanh", [node("Add", [f"xh_{t}", node("Mul", [f"r_{t}", f"rh_{t}"], [f"rrh_{t}"])],
                                    [f"ah_{t}"])], [f"hh_{t}"])
            d = node("Sub", [h, hh], [f"d_{t}"])
            h = node("Add", [hh, node("Mul", [f"z_{t}", d], [f"zd_{t}"])], [f"h_{t + 1}"])
    logits = node("Add", [node("MatMul", [h, const("Wd", w["Wd"])], ["dm"]), const("bd", w["bd"])], ["logits"])
    node("Softmax", [logits], ["y"], axis=-1)
    graph = helper.make_graph(nodes, kind.replace(" ", "_"), [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", C])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)])
    model.ir_version = 8
    return model


CANDIDATES = ("fp32 native GRU", "fp32 unrolled, hoisted", "int8 hoisted in-proj", "int8 dyn rec",
              "int8 static-h rec")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("keras", type=Path, help="a trained GRU model (.keras), e.g. models/gru.keras")
    ap.add_argument("--dir", type=Path, default=None, help="its rnnx exports (adds unrolled.int8-dynamic.onnx)")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import onnx
    import onnxruntime as ort

    from exporters.bench.machine import load_sample, load_summary
    from exporters.bench.rounds import interleave, paired_ratio
    from pipeline.export import evaluation_set
    from pipeline.params import load_params

    w = gru_weights(args.keras)
    x, y, _labels, _scale = evaluation_set("gru", load_params(args.params))
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    keras_out = np.asarray(w["model"].predict(x, batch_size=1000, verbose=0))
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    sessions, rows = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for kind in CANDIDATES:
            paths[kind] = Path(tmp) / (kind.replace(" ", "_").replace(",", "") + ".onnx")
            onnx.save(build(kind, w), paths[kind])
        for variant in ("unrolled", "stream"):   # the quantize stage's files, fed chunk by chunk
            if args.dir and (args.dir / f"{variant}.int8-dynamic.onnx").is_file():
                paths[f"pipeline {variant}.int8-dynamic (fed chunk by chunk)"] = args.dir / f"{variant}.int8-dynamic.onnx"
        for kind, path in paths.items():
            if kind.startswith("pipeline"):
                import runtime

                m = runtime.load(path, providers=["cpu"], threads=1, batch=1)
                big = runtime.load(path, providers=["cpu"], threads=1, batch=256)
                out = np.concatenate([runtime.load(path, providers=["cpu"], threads=1, batch=1000).feed(x[i:i + 1000])
                                      for i in range(0, len(x), 1000)])
                sessions[kind] = (lambda m=m: m.feed(x[:1]), lambda m=big: m.feed(x[:256]))
            else:
                s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                out = np.concatenate([s.run(None, {"x": x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
                sessions[kind] = (lambda s=s: s.run(None, {"x": x[:1]}), lambda s=s: s.run(None, {"x": x[:256]}))
            rows[kind] = {"accuracy": float(np.mean(out.argmax(-1) == y)),
                          "max_abs_diff_vs_keras": float(np.abs(out - keras_out).max()),
                          "nodes": len(onnx.load(path).graph.node), "bytes": path.stat().st_size}
        load = []
        ref = "fp32 native GRU"
        for which, (index, calls) in {"batch 1": (0, 40), "batch 256": (1, 3)}.items():
            got = interleave({k: v[index] for k, v in sessions.items()}, rounds=args.rounds, calls=calls,
                             block_ms=30, on_round=lambda _r: load.append(load_sample()))
            for kind, figures in got.items():
                r = paired_ratio(got[ref]["blocks"], figures["blocks"])
                rows[kind][which] = {"p50_ms": figures["stats"]["p50"], "p90_ms": figures["stats"]["p90"],
                                     "speedup_vs_fp32_native": r["ratio"], "ci": [r["low"], r["high"]]}
    base_acc = rows[ref]["accuracy"]
    summary = load_summary(load)
    print(f"GRU({w['units']}) over {w['steps']} steps, {len(x)} test samples, 1 thread; Keras accuracy "
          f"{float(np.mean(keras_out.argmax(-1) == y)):.4f}; load {summary['load1_min']:.2f}..{summary['load1_max']:.2f}")
    print(f"{'candidate':<58} {'acc':>7} {'drop pt':>8} {'nodes':>6} {'b1 p50 ms':>10} {'x fp32 [95%]':>20} "
          f"{'b256 p50 ms':>11} {'x fp32 [95%]':>20}")
    verdicts, batched = [], []
    for kind, r in rows.items():
        drop = 100 * (base_acc - r["accuracy"])
        r["drop_points"] = drop
        b1, b256 = r["batch 1"], r["batch 256"]
        print(f"{kind:<58} {r['accuracy']:7.4f} {drop:8.2f} {r['nodes']:6d} {b1['p50_ms']:10.4f} "
              f"{b1['speedup_vs_fp32_native']:7.2f} [{b1['ci'][0]:.2f}-{b1['ci'][1]:.2f}] "
              f"{b256['p50_ms']:11.3f} {b256['speedup_vs_fp32_native']:7.2f} [{b256['ci'][0]:.2f}-{b256['ci'][1]:.2f}]")
        if "int8" in kind and drop <= MAX_DROP and b1["ci"][0] > 1.0:
            verdicts.append(kind)
        if "int8" in kind and drop <= MAX_DROP and b256["ci"][0] > 1.0:
            batched.append(kind)
    print("worth shipping (int8, drop <= 0.5 pt, batch-1 faster than fp32 native GRU with its whole 95% interval "
          f"above 1): {', '.join(verdicts) if verdicts else 'none'}")
    print(f"faster than the fp32 native GRU at batch 256 (same rule): {', '.join(batched) if batched else 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": summary, "winners": verdicts,
                                         "winners_batch_256": batched}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
