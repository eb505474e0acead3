"""Turning a model's next-token logits into text, through a step function.

`sampling.py` draws tokens (softmax, top-k, nucleus, greedy) in compiled chunks and cuts text
at a `--stop` marker; `beam_search.py` finds the most likely continuations or sentences;
`interactive.py` is the `--interactive` prompt. `models/inference.py` gives each of them the
model's one-token step.
"""
