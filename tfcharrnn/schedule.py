"""The learning rate at each step: an optional linear warm-up, then a decay.

  epoch_decay  learning_rate x decay_rate ** epoch (char-rnn's schedule; the default)
  cosine       from learning_rate down to learning_rate x min_lr_ratio along half a cosine,
               over the whole run: progress = the larger of step / total steps and, with
               --max_minutes, the fraction of the time budget spent

A warm-up of warmup_steps multiplies either by (step + 1) / warmup_steps until it reaches 1.
The time budget's progress comes from the train step, averaged over replicas, so every worker
sets the same rate.
"""

import math


def learning_rate(train_config, step: int, epoch: int, progress: float) -> float:
    """Args: train_config: TrainConfig; step: steps done so far; epoch: the current epoch;
    progress: how much of the run is done, in [0, 1] (cosine only)."""
    tc = train_config
    if tc.lr_schedule == "cosine":
        floor = tc.learning_rate * tc.min_lr_ratio
        p = min(max(progress, 0.0), 1.0)
        rate = floor + (tc.learning_rate - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
    else:
        rate = tc.learning_rate * tc.decay_rate ** epoch
    if tc.warmup_steps and step < tc.warmup_steps:
        rate *= (step + 1) / tc.warmup_steps
    return rate
