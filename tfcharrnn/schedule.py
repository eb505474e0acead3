"""The learning rate at each step: an optional linear warm-up, then a decay.

  epoch_decay  learning_rate x decay_rate ** epoch (char-rnn's schedule; the default)
  cosine       from learning_rate down to learning_rate x min_lr_ratio along half a cosine,
               over the whole run: progress = the larger of step / total steps and, with
               --max_minutes, the fraction of the time budget spent
  linear       the same ends and progress along a straight line (with --min_lr_ratio=0,
               "straight to zero": Bergsma et al., 2025)

A warm-up of warmup_steps multiplies either by (step + 1) / warmup_steps until it reaches 1.
The time budget's progress comes from the train step, averaged over replicas, so every worker
sets the same rate.
"""

import math

# The fraction of the way from the floor to the peak still left at progress p in [0, 1].
_SHAPES = {
    "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),
    "linear": lambda p: 1.0 - p,
}


def learning_rate(train_config, step: int, epoch: int, progress: float) -> float:
    """Args: train_config: TrainConfig; step: steps done so far; epoch: the current epoch;
    progress: how much of the run is done, in [0, 1] (cosine and linear)."""
    tc = train_config
    if tc.lr_schedule == "epoch_decay":
        rate = tc.learning_rate * tc.decay_rate ** epoch
    elif tc.lr_schedule in _SHAPES:
        floor = tc.learning_rate * tc.min_lr_ratio
        p = min(max(progress, 0.0), 1.0)
        rate = floor + (tc.learning_rate - floor) * _SHAPES[tc.lr_schedule](p)
    else:
        raise ValueError(f"unknown learning-rate schedule {tc.lr_schedule!r}")
    if tc.warmup_steps and step < tc.warmup_steps:
        rate *= (step + 1) / tc.warmup_steps
    return rate
