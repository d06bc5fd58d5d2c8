"""params.yaml against its schema (pipeline/params.py): typos and bad values are one-line errors, before any work."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporters.errors import ConfigError
from pipeline import params as params_mod
from pipeline.params import MapOf, SCHEMA, load_params, validate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def repo_params():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_repository_params_and_the_tiny_test_params_pass(repo_params, tiny_params):
    assert validate(copy.deepcopy(repo_params)) == repo_params
    assert load_params(ROOT / "params.yaml") == repo_params
    validate(tiny_params)


def _set(path: str, value):
    """A change to params: set (or add) the key at dotted ``path``."""
    def change(p):
        *parents, last = path.split(".")
        node = p
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


# (change, the key path the message must name, a phrase of what was expected)
CASES = [
    (_set("epochs", 1), "unknown key 'epochs'", "expected some of seed, data"),
    (_set("bench", {}), "unknown key 'bench'", "did you mean 'benchmark'?"),
    (_set("seed", "abc"), "seed must be an integer from 0 to 4294967295", "got 'abc'"),
    (_set("seed", -1), "seed must be", "got -1"),
    (_set("seed", 2**32), "seed must be", "got 4294967296"),
    (_set("seed", True), "seed must be", "got True"),
    (_set("data", 5), "data must be a mapping", "got 5"),
    (_set("data.dataset", "cifar10"), "data.dataset must be one of fashion_mnist, mnist", "got 'cifar10'"),
    (_set("data.dir", 5), "data.dir must be a string or null", "got 5"),
    (_set("data.allow_download", "yes please"), "data.allow_download must be true or false", "'yes please'"),
    (_set("data.val_size", 60000), "data.val_size must be smaller than the 60000", "got 60000"),
    (_set("data.val_size", 0), "data.val_size must be an integer >= 1", "got 0"),
    (_set("data.train_limit", 0), "data.train_limit must be an integer >= 1 or null", "got 0"),
    (_set("data.valsize", 10), "unknown key 'data.valsize'", "did you mean 'val_size'?"),
    (_set("tasks.clips.canvas", 16), "tasks.clips must leave the item room", "canvas=16, item=14, frames=8"),
    (_set("tasks.clips.frames", 1), "tasks.clips.frames must be an integer >= 2", "got 1"),
    (_set("tasks.chars.sentence", "x"), "tasks.chars.sentence must be a string of at least 2", "got 'x'"),
    (_set("tasks.words", {}), "unknown key 'tasks.words'", "expected some of clips, chars"),
    (_set("train.lstm.epoch", 1), "unknown key 'train.lstm.epoch'", "did you mean 'epochs'?"),
    (_set("train.lstmm", {}), "unknown key 'train.lstmm'", "did you mean 'lstm'?"),
    (_set("train.gru.units", -3), "train.gru.units must be an integer >= 1", "got -3"),
    (_set("train.gru.learning_rate", 0), "train.gru.learning_rate must be a number > 0 and < 1", "got 0"),
    (_set("train.lstm.keep_best", "no"), "train.lstm.keep_best must be true or false", "got 'no'"),
    (_set("train.cnn_lstm.filters", []), "train.cnn_lstm.filters must be a non-empty list", "got []"),
    (_set("train.cnn_lstm.dropout", 1.0), "train.cnn_lstm.dropout must be a number >= 0 and < 1", "got 1.0"),
    (_set("train.char_gru.max_epochs", 0), "train.char_gru.max_epochs must be an integer >= 1", "got 0"),
    (_set("train.char_gru.epochs", 5), "unknown key 'train.char_gru.epochs'", "max_epochs"),
    (_set("train.distribute", "gpus"), "train.distribute must be one of none, mirrored, multi_worker", "'gpus'"),
    (_set("export.variants", ["full", "full"]), "export.variants must be a non-empty list of distinct", "full"),
    (_set("export.variants", ["fll"]), "export.variants must be", "got ['fll']"),
    (_set("export.atol", "1e-5"), "export.atol must be a number > 0", "write 1.0e-5"),
    (_set("export.opset", 12), "export.opset must be an integer >= 13", "got 12"),
    (_set("export.samples", 0), "export.samples must be an integer >= 1 or null", "got 0"),
    (_set("quantize.modes", ["int4"]), "quantize.modes must be a non-empty list", "got ['int4']"),
    (_set("quantize.max_drop", -1), "quantize.max_drop must be a number >= 0", "got -1"),
    (_set("quantize.mixed", "on"), "quantize.mixed must be one of auto, off", "got 'on'"),
    (_set("quantize.calibration_method", "kl"), "quantize.calibration_method must be one of minmax", "'kl'"),
    (_set("quantize.per_model", {"gru": 3}), "quantize.per_model.gru must be a mapping", "got 3"),
    (_set("quantize.per_model", {"lstmm": {}}), "quantize.per_model has unknown entry 'lstmm'", "lstm, gru"),
    (_set("quantize.per_model", {"gru": {"int8-static": {"per_chanel": True}}}),
     "unknown key 'quantize.per_model.gru.int8-static.per_chanel'", "did you mean 'per_channel'?"),
    (_set("quantize.per_model", {"gru": {"max_drop": "1"}}), "quantize.per_model.gru.max_drop must be a number",
     "got '1'"),
    (_set("benchmark.threads", ["0"]), "benchmark.threads must be a non-empty list", "got ['0']"),
    (_set("benchmark.sweep", [1, "x"]), "benchmark.sweep must be", "got [1, 'x']"),
    (_set("benchmark.providers", ["cdua"]), "benchmark.providers must be a non-empty list", "got ['cdua']"),
    (_set("benchmark.block_ms", 0), "benchmark.block_ms must be a number > 0", "got 0"),
    (_set("benchmark.reps", 2.5), "benchmark.reps must be an integer >= 1", "got 2.5"),
    (_set("benchmark.per_model", {"gru": {"rep": 3}}), "unknown key 'benchmark.per_model.gru.rep'",
     "did you mean 'reps'?"),
]


@pytest.mark.parametrize("change, where, what", CASES, ids=[c[1][:50] for c in CASES])
def test_each_bad_key_or_value_is_one_line_naming_it(repo_params, change, where, what):
    p = copy.deepcopy(repo_params)
    change(p)
    with pytest.raises(ConfigError) as err:
        validate(p)
    message = str(err.value)
    assert message.startswith("params.yaml: ") and "\n" not in message
    assert where in message and what in message, message


def test_a_file_that_is_not_a_mapping_or_not_yaml(tmp_path):
    (tmp_path / "list.yaml").write_text("- seed\n- 1\n")
    with pytest.raises(ConfigError, match="list.yaml: must hold a mapping of stage names to settings, got list"):
        load_params(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("seed: [1\ndata: {\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML") as err:
        load_params(tmp_path / "broken.yaml")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_a_stage_stops_on_a_typo_before_any_work(tmp_path, repo_params):
    """`epoch: 1` used to train the default 10 epochs; now the stage exits 1 with one line, TF never loaded."""
    p = copy.deepcopy(repo_params)
    p["train"]["lstm"]["epoch"] = 1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    code = ("import sys\nfrom pipeline import train\n"
            f"rc = train.main(['lstm', '--params', {str(tmp_path / 'params.yaml')!r}, '--models', {str(tmp_path)!r}])\n"
            "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    got = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert got.stdout.split() == ["1", "False", "False"], got.stdout + got.stderr
    lines = got.stderr.strip().splitlines()
    assert lines == [f"rnnx: ConfigError: {tmp_path / 'params.yaml'}: unknown key 'train.lstm.epoch' "
                     "(did you mean 'epochs'?); expected some of units, epochs, batch_size, learning_rate, "
                     "cosine_decay, keep_best"], got.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "params.yaml"]


def _leaf_keys(schema, found=None) -> set:
    found = set() if found is None else found
    if isinstance(schema, MapOf):
        return _leaf_keys(schema.value, found)
    if isinstance(schema, dict):
        for key, sub in schema.items():
            found.add(key)
            _leaf_keys(sub, found)
    return found


def test_every_schema_key_is_read_by_a_stage():
    """No dead entries: each key of the schema is a string some pipeline module uses."""
    source = "".join(p.read_text() for p in (ROOT / "pipeline").glob("*.py") if p.name != "params.py")
    source += (ROOT / "exporters" / "quant_modes.py").read_text()   # the quantize mode names
    unread = sorted(k for k in _leaf_keys(SCHEMA) if f'"{k}"' not in source)
    assert unread == [], f"schema keys no stage reads: {unread}"


def test_the_names_written_out_in_the_schema_match_their_sources():
    from exporters.quantize import METHODS, MODES
    from runtime.contract import VARIANTS
    from runtime.providers import ALIASES

    assert params_mod.QUANT_MODES == tuple(MODES) and params_mod.QUANT_METHODS == tuple(METHODS)
    assert params_mod.VARIANTS == tuple(VARIANTS) and set(params_mod.PROVIDERS) == set(ALIASES)


def test_a_quantize_mode_is_one_registry_entry_that_everything_reads():
    """The runtime's precision list, the params schema, `rnnx quantize --help` and the report's
    colours all come from (or are tied to) exporters/quant_modes.py."""
    from click.testing import CliRunner

    from exporters.cli import cli
    from exporters.quant_modes import REGISTRY
    from pipeline.report_plots import PRECISION_COLORS, PRECISION_ORDER
    from runtime.contract import PRECISIONS

    assert PRECISIONS == ("fp32", *REGISTRY, "mixed")
    assert params_mod.QUANT_MODES == tuple(REGISTRY) and set(PRECISION_ORDER) == {"fp32", *REGISTRY}
    assert set(PRECISION_COLORS) == set(PRECISION_ORDER)
    shown = " ".join(CliRunner().invoke(cli, ["quantize", "--help"]).output.split())
    assert all(f"{name} ({m.summary}" in shown for name, m in REGISTRY.items()), shown


def test_the_schema_covers_every_section_of_params_yaml(repo_params):
    assert set(repo_params) <= set(SCHEMA)
    assert {"seed", "data", "tasks", "train", "export", "quantize", "benchmark"} == set(SCHEMA)
    assert params_mod.CROSS_CHECKS
