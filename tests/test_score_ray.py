"""examples/score_ray.py scores a folder on Ray Data with a pickled runtime.Model (needs `rnnx[ray]`)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is the optional `ray` extra")

from runtime_fixtures import lstm_exports, sequences  # noqa: E402


def test_ray_scores_every_file_like_the_model(tmp_path):
    import runtime

    full = lstm_exports()["full"]
    folder = tmp_path / "data"
    folder.mkdir()
    model = runtime.load(full)
    xs = {f"{i}.npy": sequences(4, seed=i) for i in range(3)}
    for name, x in xs.items():
        np.save(folder / name, x)
    example = Path(__file__).resolve().parent.parent / "examples" / "score_ray.py"
    res = subprocess.run([sys.executable, str(example), str(full), str(folder), "--concurrency", "1",
                          "--output", str(tmp_path / "s.npz")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    scores = np.load(tmp_path / "s.npz")
    for name, x in xs.items():
        assert np.abs(scores[name] - model.predict(x)).max() == 0.0
