"""Training on several devices and machines with tf.distribute.

  cluster.py   TF_CONFIG -> this worker's place (worker 0 is the chief)
  strategy.py  --distribution_strategy -> a strategy (one device, mirrored, multi-worker)
  replicas.py  the global batch's streams split over replicas; compiled steps; carried state
"""

from tfcharrnn.distribute.replicas import Replicas
from tfcharrnn.distribute.strategy import get_strategy


def replicas(config) -> Replicas:
    """Replicas for a DistributeConfig: the strategy and this process's place in it."""
    return Replicas(*get_strategy(config))


__all__ = ["Replicas", "get_strategy", "replicas"]
