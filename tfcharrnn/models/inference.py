"""One token at a time, for generation: either back-end's weights, folded for speed.

Generating runs, per token and per layer, a product [B, I+H] x [I+H, G*H]. For one stream these
are matrix-vector products whose cost is reading the weights (13 MB per token for the 2 x 512
LSTM, from cache), so everything else around them is overhead. The sampler compiles its loop
with XLA (`decoding/sampling.py`), and this step is written for that:
  - an LSTM or basic RNN layer is ONE product [x, h, 1] @ [W_input; W_hidden; b_hidden], the
    bias folded in as a weight row: under XLA on CPU a separate `dot + bias` is fused into a
    naive loop (2 x 512 LSTM, one stream: ~5,000 tokens/s with the add, ~9,000 folded);
  - a GRU layer is two, [x, 1] @ [W_input; b_input] and [h, 1] @ [W_hidden; b_hidden], because
    its reset gate multiplies the recurrent part alone.
Each cell folds its own weights and runs its own equations (`Cell.fold`,
`Cell.folded_step`). In mixed precision the folded weights are rounded to the compute dtype
once, and each product takes its input rounded to it and gives float32 back (`ops.matmul`),
as in training. The sampler folds the weights once per `generate()` call (`fold_weights`,
~2 ms for the 2 x 512 LSTM) and passes them into its compiled calls, so they always hold the
variables' current values and no compiled call repeats the folding.
"""

import tensorflow as tf

from tfcharrnn.models import ops
from tfcharrnn.models.cells import base


def fold_weights(model) -> dict:
    """The model's current weights, folded for `step`: a dict of tensors (no variables).

    {"embedding": [V, E] or None, "layers": per layer what `Cell.fold` gives (one
    [I + H + 1, G*H] product; the GRU a pair [I + 1, 3H], [H + 1, 3H]), "logits": [H + 1, V]}.
    """
    embedding, layers, softmax = model.step_weights()
    compute = ops.compute_dtype(model.config.precision)
    return {"embedding": None if embedding is None else tf.convert_to_tensor(embedding),
            "layers": [model.cell.fold(p, compute) for p in layers],
            "logits": base.fold_rows(softmax["W_softmax"], softmax["b_softmax"])}


def step_functions(model):
    """(step, weights_fn) for `decoding.sampling.Sampler`: step(tokens int32 [B], state,
    weights) -> (logits [B, V], new state), no dropout; weights_fn() -> `fold_weights(model)`.

    `state` is the model's flat state list (`cell.state_size` tensors per layer).
    """
    cell, vocab_size = model.cell, model.vocab_size
    per_layer = cell.state_size
    compute = ops.compute_dtype(model.config.precision)

    def step(tokens, state, weights):
        dtype = weights["logits"].dtype
        if weights["embedding"] is not None:
            x = tf.gather(weights["embedding"], tokens)                     # [B, E]
        else:
            x = tf.one_hot(tokens, vocab_size, dtype=dtype)                 # [B, V]
        new_state = []
        for i, layer in enumerate(weights["layers"]):
            layer_state = tuple(state[i * per_layer:(i + 1) * per_layer])
            x, layer_state = cell.folded_step(layer, x, layer_state, compute)  # [B, H]
            new_state.extend(layer_state)
        return tf.matmul(base.with_ones(x), weights["logits"]), new_state   # [B, V]

    return step, lambda: fold_weights(model)


def make_step(model):
    """step(tokens, state) -> (logits, new state) with the model's weights as they are now."""
    step, weights_fn = step_functions(model)
    weights = weights_fn()
    return lambda tokens, state: step(tokens, state, weights)
