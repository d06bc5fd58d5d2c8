"""Distributed training: the tf.distribute strategy named by ``train.distribute`` in params.yaml.

- ``none``: the default strategy (one process, TensorFlow's own device placement).
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over the GPUs of this machine
  (the CPU when there is none).
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the
  processes (machines) listed in the standard ``TF_CONFIG`` environment
  variable; every worker runs the same stage with its own ``task``.

The model is built and compiled inside the strategy's scope and each model's
``batch_size`` is the *global* batch, split evenly across the replicas, so a
run gives the same updates whatever the number of replicas (up to float
summation order). Only the chief writes the model and the metrics: a task of
type ``chief``, or worker 0 when the cluster has no ``chief`` job
(TensorFlow's convention); the others train alongside and exit with status 0.

Example (``TF_CONFIG`` on the first of two machines; the second has ``"index": 1``)::

    {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
     "task": {"type": "worker", "index": 0}}
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

from exporters.errors import ConfigError

KINDS = ("none", "mirrored", "multi_worker")
TRAINING_JOBS = ("chief", "worker")


def setting(params: dict) -> str:
    """``train.distribute`` from params.yaml (``none`` when absent), checked against KINDS."""
    train = params.get("train") or {}
    kind = train.get("distribute", "none") if isinstance(train, dict) else "none"
    if kind is None or kind is False:
        kind = "none"
    if kind not in KINDS:
        raise ConfigError(f"train.distribute must be one of {list(KINDS)}, got {kind!r}")
    return kind


@dataclass(frozen=True)
class Task:
    """What ``TF_CONFIG`` says about this process: its job, its index, and the cluster's size."""

    type: str
    index: int
    workers: int          # training processes in the cluster (chief + workers)
    has_chief: bool = False

    @property
    def is_chief(self) -> bool:
        return self.type == "chief" or (self.type == "worker" and self.index == 0 and not self.has_chief)


def parse_tf_config(text: str | None) -> Task:
    """Read a ``TF_CONFIG`` value (JSON) for multi-worker training; ConfigError when it cannot be used."""
    if not text:
        raise ConfigError("train.distribute is multi_worker but TF_CONFIG is not set; expected JSON like "
                          '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}')
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc}): {text[:200]!r}") from None
    cluster, task = (cfg.get("cluster"), cfg.get("task")) if isinstance(cfg, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError(f"TF_CONFIG must be a mapping with 'cluster' and 'task', got {text[:200]!r}")
    other_jobs = sorted(set(cluster) - set(TRAINING_JOBS))
    if other_jobs:
        raise ConfigError(f"TF_CONFIG cluster has jobs {other_jobs}; multi_worker training takes only "
                          f"{list(TRAINING_JOBS)} (no parameter servers or evaluators)")
    for job, hosts in cluster.items():
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and ":" in h for h in hosts):
            raise ConfigError(f"TF_CONFIG cluster[{job!r}] must be a non-empty list of 'host:port', got {hosts!r}")
    if len(cluster.get("chief", [])) > 1:
        raise ConfigError(f"TF_CONFIG cluster has {len(cluster['chief'])} chiefs; expected at most one")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise ConfigError(f"TF_CONFIG task type {kind!r} is not a job of the cluster {sorted(cluster)}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[kind]):
        raise ConfigError(f"TF_CONFIG task index must be an integer in [0, {len(cluster[kind])}) "
                          f"for job {kind!r}, got {index!r}")
    workers = sum(len(cluster.get(job, [])) for job in TRAINING_JOBS)
    return Task(type=kind, index=index, workers=workers, has_chief="chief" in cluster)


def local_tf_configs(workers: int, host: str = "127.0.0.1") -> list[str]:
    """``TF_CONFIG`` values for ``workers`` processes on this machine (free ports on ``host``), index order.

    For trying multi_worker on one machine (tests, scripts/bench_distributed.py):
    start one ``python -m pipeline.train NAME`` per value, with it in the environment.
    """
    import socket

    socks = [socket.socket() for _ in range(workers)]
    try:
        for s in socks:
            s.bind((host, 0))
        hosts = [f"{host}:{s.getsockname()[1]}" for s in socks]
    finally:
        for s in socks:
            s.close()
    return [json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
            for i in range(workers)]


@dataclass
class Distribution:
    """The strategy a training run uses, and whether this process writes the results."""

    kind: str
    strategy: object              # a tf.distribute.Strategy
    is_chief: bool = True
    workers: int = 1

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    def scope(self):
        """Build and compile models inside this (the default strategy's scope for ``none``)."""
        return self.strategy.scope() if self.kind != "none" else contextlib.nullcontext()

    def describe(self) -> str:
        role = "chief" if self.is_chief else "not the chief: trains, writes nothing"
        return f"{self.kind}, {self.replicas} replica(s) over {self.workers} worker(s); this process: {role}"

    def prepare(self, model):
        """Make a model built in ``scope()`` trainable with ``fit`` under this strategy (see _MultiWorkerFix)."""
        if self.kind == "multi_worker":
            _MultiWorkerFix.apply(model, self.strategy)
        return model


def single() -> Distribution:
    """One process, TensorFlow's default strategy (``train.distribute: none``)."""
    import tensorflow as tf

    return Distribution("none", tf.distribute.get_strategy())


def from_params(params: dict, environ=os.environ) -> Distribution:
    """The Distribution for ``train.distribute`` (multi_worker reads ``TF_CONFIG`` from ``environ``)."""
    kind = setting(params)
    import tensorflow as tf

    if kind == "none":
        return single()
    if kind == "mirrored":
        return Distribution(kind, tf.distribute.MirroredStrategy())
    task = parse_tf_config(environ.get("TF_CONFIG"))
    # TF reads TF_CONFIG from os.environ itself; the strategy connects to the other workers here.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution(kind, strategy, is_chief=task.is_chief, workers=task.workers)


class _MultiWorkerFix:
    """Two places where Keras 3's TensorFlow trainer fails under MultiWorkerMirroredStrategy.

    (keras-team/keras#20585, tensorflow/tensorflow#72388; Keras 3.15, TF 2.21.)

    1. ``fit``/``evaluate`` first build the model from one batch, which they
       get by ``strategy.reduce("MEAN", (x, y))`` on the whole batch structure;
       across workers that raises "Attempt to convert a value (PerReplica...)".
       Only the shapes are needed: this build takes this worker's local batch.
    2. The per-step logs (scalar metric results) are reduced with
       ``strategy.reduce("MEAN", v, axis=0)``, which fails on a scalar
       ("Invalid reduction dimension 0"). They are averaged across replicas
       (``axis=None``) instead; each worker holds an equal share of every batch.

    The first is patched on the model instance, the second in the trainer
    module of this process (which trains under this one strategy).
    """

    @staticmethod
    def apply(model, strategy) -> None:
        import types

        import tensorflow as tf
        from keras.src import tree
        from keras.src.backend.tensorflow import trainer as tf_trainer

        def local(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        def maybe_symbolic_build(self, iterator=None, data_batch=None):
            if iterator is not None:
                for _, _, it in iterator:
                    data_batch = tree.map_structure(local, next(it))
                    break
            with strategy.scope():
                self._symbolic_build(data_batch=data_batch)

        model._maybe_symbolic_build = types.MethodType(maybe_symbolic_build, model)

        original = getattr(tf_trainer.reduce_per_replica, "_rnnx_original", tf_trainer.reduce_per_replica)

        def reduce_per_replica(values, strategy_, reduction="auto"):
            if reduction in ("auto", "mean") and not isinstance(strategy_, tf.distribute.TPUStrategy) \
                    and tf_trainer._collective_all_reduce_multi_worker(strategy_):
                return tree.map_structure(lambda v: strategy_.reduce("MEAN", v, axis=None), values)
            return original(values, strategy_, reduction)

        reduce_per_replica._rnnx_original = original
        tf_trainer.reduce_per_replica = reduce_per_replica
