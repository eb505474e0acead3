"""--distribution_strategy -> a tf.distribute strategy, as in the Model Garden's
`distribute_utils.get_distribution_strategy`; the training loop never branches on which one.

  off                    TensorFlow's default strategy: one device, one replica.
  mirrored               MirroredStrategy over the first --num_replicas local GPUs (0 = all);
                         on a machine without a GPU, over --num_replicas logical CPU devices
                         (the physical CPU split in N, which is how the tests run it).
  multi_worker_mirrored  MultiWorkerMirroredStrategy, RING collectives; the cluster and this
                         worker's index come from TF_CONFIG (`cluster.py`).

Logical CPU devices must be configured before TensorFlow initializes its devices, so
`get_strategy` is called before the first TensorFlow op of the process.
"""

import os
import subprocess
import sys

import tensorflow as tf

from tfcharrnn.config import DistributeConfig
from tfcharrnn.distribute import cluster as cluster_lib
from tfcharrnn.errors import RunError, UsageError


def get_strategy(config: DistributeConfig):
    """Returns (strategy, Cluster) for `config`; one-line errors for what cannot start."""
    kind = config.distribution_strategy
    if kind == "off":
        return tf.distribute.get_strategy(), cluster_lib.SINGLE
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(_local_devices(config.num_replicas)), \
            cluster_lib.SINGLE
    cluster = cluster_lib.parse_tf_config(os.environ.get("TF_CONFIG", ""))
    return _multi_worker(cluster, config.startup_timeout), cluster


def _local_devices(num_replicas: int) -> list:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        n = num_replicas or len(gpus)
        if n > len(gpus):
            raise UsageError(f"--num_replicas={n} but this machine has {len(gpus)} GPU(s); "
                             f"pass --num_replicas={len(gpus)} or less (0 = every GPU)")
        return [f"/gpu:{i}" for i in range(n)]
    if not num_replicas:
        raise UsageError("--distribution_strategy=mirrored found no GPU; pass --num_replicas=N "
                         "to run N replicas on logical CPU devices, or "
                         "--distribution_strategy=off")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_replicas)
    except RuntimeError:  # already initialized (e.g. a second run in one process)
        pass
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) != num_replicas:
        raise RunError(f"TensorFlow was initialized with {len(cpus)} CPU device(s) before "
                       f"--num_replicas={num_replicas} could split the CPU; start a new process")
    return [d.name for d in cpus]


def _multi_worker(cluster, timeout: float):
    """MultiWorkerMirroredStrategy, or one error line if the workers are not all up in time.

    Its constructor blocks until every worker has connected, with no deadline of its own
    (CommunicationOptions' timeout does not cover start-up), and it blocks inside TensorFlow's
    C++ code holding the GIL, so neither a Python thread nor a signal handler can interrupt
    it. A watchdog process does: if the constructor has not returned within `timeout`, it
    prints the error line and kills this process (exit status 137).
    """
    others = ", ".join(w for i, w in enumerate(cluster.workers) if i != cluster.index)
    message = (f"error: worker {cluster.index} waited {timeout:g} s and not every worker of "
               f"TF_CONFIG came up ({others}); start every worker with the same command and "
               f"its own TF_CONFIG task index, or raise --startup_timeout")
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()),
                                 str(timeout), message], stdin=subprocess.PIPE)
    try:
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UsageError(f"could not start worker {cluster.index} at "
                         f"{cluster.workers[cluster.index]} ({reason}); check TF_CONFIG's "
                         f"addresses and that the port is free") from None
    finally:
        watchdog.stdin.close()  # the watchdog sees end of input and exits
        watchdog.wait()


# Waits until its standard input closes (the strategy started, or the parent died) or the
# deadline passes; then prints the message and kills the parent.
_WATCHDOG = """
import os, select, signal, sys
pid, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ready, _, _ = select.select([sys.stdin], [], [], seconds)
if not ready:
    sys.stderr.write(message + "\\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
"""
