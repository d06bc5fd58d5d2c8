"""Per-layer mixed precision under an accuracy gate: which layers stay in float.

When quantizing every layer loses more accuracy than the gate allows, each
layer's sensitivity is measured on its own: the model with only that layer
quantized (all others float), compared with fp32 on the evaluation data
(accuracy drop, then mean |Δ| of the output). The most sensitive layers are
then kept in float one at a time, most sensitive first, until the gate
holds. Pure logic over an `attempt(kept_float) -> Trial` callable, so it is
deterministic for deterministic attempts: ties are broken by graph order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable


@dataclass(frozen=True)
class Trial:
    """One quantization with the layers in `kept` left in float, measured against fp32."""

    kept: tuple
    drop_points: float
    mean_abs_diff: float
    max_abs_diff: float
    argmax_agreement: float | None

    def public(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "kept"}


def rank(layers: list[str], sensitivity: dict) -> list[str]:
    """Layers, most sensitive first: larger drop, then larger mean |Δ|, then graph order."""
    order = {name: i for i, name in enumerate(layers)}
    return sorted(layers, key=lambda n: (-sensitivity[n].drop_points, -sensitivity[n].mean_abs_diff, order[n]))


def search(layers: list[str], attempt: Callable[[tuple], Trial], max_drop: float,
           say: Callable[[str], None] = lambda _m: None) -> tuple[Trial | None, dict]:
    """Keep the most sensitive layers in float, one more at a time, until the drop is <= max_drop.

    Returns (the first trial that passes or None, the log: sensitivity per layer, order, trials).
    Keeping every layer in float is not a quantization, so it is never a result.
    """
    sensitivity = {}
    for name in layers:
        sensitivity[name] = attempt(tuple(n for n in layers if n != name))
        say(f"sensitivity of {name}: drop {sensitivity[name].drop_points:.2f} pts, "
            f"mean |d| {sensitivity[name].mean_abs_diff:.3g}")
    order = rank(layers, sensitivity)
    log = {"sensitivity": {n: sensitivity[n].public() for n in layers}, "order": order, "trials": []}
    for k in range(1, len(layers)):
        trial = attempt(tuple(order[:k]))
        log["trials"].append({"kept_float": list(order[:k]), **trial.public()})
        say(f"keeping {', '.join(order[:k])} in float: drop {trial.drop_points:.2f} pts")
        if trial.drop_points <= max_drop:
            return trial, log
    return None, log
