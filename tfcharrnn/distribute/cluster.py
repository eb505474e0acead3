"""Who this process is in a multi-worker run, from the TF_CONFIG environment variable.

Every TensorFlow multi-worker program reads the same variable, e.g. for the second of two
workers on one machine:

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]},
                "task": {"type": "worker", "index": 1}}'

Worker 0 is the chief: the only process that writes checkpoints, config.json, vocab.json and
TensorBoard events. This module is the one place that decides it.
"""

import dataclasses
import json

from tfcharrnn.errors import UsageError

_EXAMPLE = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\'')


@dataclasses.dataclass(frozen=True)
class Cluster:
    workers: tuple      # "host:port" of every worker, in task-index order
    index: int          # this process's task index

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def num_workers(self) -> int:
        return len(self.workers)


SINGLE = Cluster(workers=("localhost",), index=0)  # every strategy but multi_worker_mirrored


def parse_tf_config(text) -> Cluster:
    """TF_CONFIG's text -> Cluster; a one-line UsageError for anything malformed."""
    def bad(what):
        return UsageError(f"TF_CONFIG {what}; set it on every worker to the same cluster and "
                          f"that worker's index, {_EXAMPLE}")
    if not text:
        raise bad("is not set, and --distribution_strategy=multi_worker_mirrored needs it")
    try:
        config = json.loads(text)
    except ValueError as e:
        raise bad(f"is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise bad("is not a JSON object")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise bad("has no \"cluster\"")
    others = sorted(set(cluster) - {"worker"})
    if others:
        raise bad(f"names job(s) {', '.join(others)}: only \"worker\" jobs are supported "
                  f"(worker 0 is the chief)")
    workers = cluster.get("worker")
    if (not isinstance(workers, list) or not workers
            or not all(isinstance(w, str) and ":" in w for w in workers)):
        raise bad("has no list of \"host:port\" addresses in cluster.worker")
    if len(set(workers)) != len(workers):
        raise bad("lists a worker address twice")
    task = config.get("task")
    if not isinstance(task, dict) or "index" not in task:
        raise bad("has no \"task\" with this worker's \"index\"")
    if task.get("type", "worker") != "worker":
        raise bad(f"has task type {task.get('type')!r}; only \"worker\" is supported")
    index = task["index"]
    if isinstance(index, bool) or not isinstance(index, int):
        raise bad(f"has a task index that is not an integer: {index!r}")
    if not 0 <= index < len(workers):
        raise bad(f"has task index {index}, out of range for {len(workers)} worker(s) "
                  f"(0 to {len(workers) - 1})")
    return Cluster(workers=tuple(workers), index=index)
