"""Regenerate text with the character GRU's stream model (seed 003), one character per
call, each output fed back as the next input. The vocabulary is the model's labels.

    python examples/char_generate.py MODEL_stream.onnx [--start '*'] [--length N]

Needs only numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import runtime  # noqa: E402


def generate(model: runtime.StreamingModel, start: str, length: int, temperature: float = 0.0,
             seed: int = 0, stop: str | None = None) -> str:
    """Up to ``length`` characters following ``start`` (greedy when temperature is 0),
    ending before ``stop`` when the model produces it."""
    vocab = list(model.labels or ())
    if not vocab:
        raise runtime.ModelFormatError("the model's metadata has no labels to use as the vocabulary")
    unknown = [ch for ch in start if ch not in vocab]
    if unknown:
        raise runtime.InputValueError(f"start characters {unknown} are not in the vocabulary {''.join(vocab)!r}")
    onehot = np.eye(len(vocab), dtype=np.float32)
    rng = np.random.default_rng(seed)
    model.reset()
    for ch in start[:-1]:  # prime the states with all but the last start character
        model.step(onehot[vocab.index(ch)])
    ch, text = start[-1], []
    for _ in range(length):
        probs = model.step(onehot[vocab.index(ch)]).reshape(-1)
        if temperature > 0:
            logits = np.log(np.maximum(probs, 1e-12)) / temperature
            p = np.exp(logits - logits.max())
            k = int(rng.choice(len(vocab), p=p / p.sum()))
        else:
            k = int(probs.argmax())
        ch = vocab[k]
        if ch == stop:
            break
        text.append(ch)
    return "".join(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the char GRU's stream .onnx export")
    parser.add_argument("--start", default="*", help="the character(s) to start from (default '*')")
    parser.add_argument("--length", type=int, default=None,
                        help="characters to generate (default: until the first start character "
                             "comes back, at most 1000)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    args = parser.parse_args(argv)
    try:
        model = runtime.load(args.model)
        if not isinstance(model, runtime.StreamingModel):
            raise runtime.ModelFormatError(f"{args.model} is not a stream export")
        if not args.start:
            raise runtime.InputValueError("--start must be at least one character")
        if args.length is None:  # one round of the sentence: until the initiator comes back
            text = generate(model, args.start, 1000, args.temperature, stop=args.start[0])
        else:
            text = generate(model, args.start, args.length, args.temperature)
        print(args.start + text)
    except runtime.RnnxError as exc:
        print(f"char_generate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
