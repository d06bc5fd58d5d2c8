"""Read params.yaml: every knob of the pipeline, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

from exporters.errors import ConfigError

DEFAULT_PATH = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PATH) -> dict:
    import yaml

    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; run from the repository root or pass --params") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must hold a mapping of stage names to settings, got {type(params).__name__}")
    return params


def section(params: dict, *keys: str) -> dict:
    """params[k1][k2]..., requiring each level to be a mapping."""
    node = params
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            where = ".".join(keys[:depth + 1])
            raise ConfigError(f"params.yaml has no {where!r} section")
        node = node[key]
    if not isinstance(node, dict):
        raise ConfigError(f"params.yaml: {'.'.join(keys)!r} must be a mapping, got {node!r}")
    return node


def integer(cfg: dict, key: str, default: int | None = None, minimum: int = 1) -> int:
    value = cfg.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"parameter {key!r} must be an integer >= {minimum}, got {value!r}")
    return value
