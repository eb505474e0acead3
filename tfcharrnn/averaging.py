"""Weight averaging: an exponential moving average (EMA) of the trainable weights.

The weights of a run wander around a minimum from step to step, with the noise of the
minibatches and of dropout; their running average sits nearer its middle and usually scores
better than the last iterate (Polyak-Ruppert averaging; AWD-LSTM's averaged SGD; the EMA of
`tf.train.ExponentialMovingAverage` and of Keras' `use_ema`). With `--ema_decay=D`, after
every train step

    average <- d_t * average + (1 - d_t) * weights,   d_t = min(D, (1 + t) / (10 + t))

(t: updates so far). The warm-up of d_t is `tf.train.ExponentialMovingAverage`'s
`num_updates`: early on the average spans roughly the last tenth of the steps taken, so the
random initial weights leave it within tens of steps instead of lingering for ~1/(1-D).

Training itself runs on the raw weights; validation, the choice of the best checkpoint and
everything that restores a run (sample, evaluate, score, export) use the averages. A
checkpoint holds both, so a resumed run continues the same average.

The variables are ONLY_FIRST_REPLICA: every replica computes the same update from the same
(already all-reduced) weights, as the loss scale in `steps.py` does.
"""

import contextlib

import tensorflow as tf


def trainable(named: dict) -> dict:
    """The trainable entries of a back-end's `named_variables()` (not the dropout RNGs)."""
    return {name: var for name, var in named.items() if var.trainable}


class WeightAverage:

    def __init__(self, named: dict, decay: float):
        """named: {name: variable}, a model's trainable `named_variables()`; built in the
        strategy's scope, like the model."""
        every = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.decay = decay
        self.weights = dict(named)
        self.averages = {name: tf.Variable(tf.convert_to_tensor(var), trainable=False,
                                           aggregation=every, name="average")
                         for name, var in self.weights.items()}
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, aggregation=every,
                                   name="average_updates")

    def update(self):
        """One step of the average, after the optimizer's update (inside the train step)."""
        t = tf.cast(self.updates, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        for name, average in self.averages.items():
            average.assign(decay * average + (1.0 - decay) * tf.convert_to_tensor(
                self.weights[name]))
        self.updates.assign_add(1)

    @contextlib.contextmanager
    def applied(self):
        """The model runs on the averages inside the block, on its own weights again after."""
        saved = {name: tf.identity(tf.convert_to_tensor(var))
                 for name, var in self.weights.items()}
        for name, var in self.weights.items():
            var.assign(self.averages[name])
        try:
            yield
        finally:
            for name, var in self.weights.items():
                var.assign(saved[name])
