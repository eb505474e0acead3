"""A plain NumPy forward pass of every cell, written from the equations, for testing.

Loops over batch rows are avoided but nothing else is clever: one time step at a time, one
layer at a time, gates sliced out by index.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def step(cell, p, x, state):
    """x [B, I]; state tuple of [B, H]; p: numpy arrays by manual-back-end name (no suffix)."""
    if cell == "mingru":   # Feng et al. 2024: neither gate reads h
        (h,) = state
        H = p["b_input"].shape[0] // 2
        z = sigmoid(x @ p["W_input"][:, :H] + p["b_input"][:H])
        candidate = x @ p["W_input"][:, H:] + p["b_input"][H:]
        h = (1 - z) * h + z * candidate
        return h, (h,)
    H = p["W_hidden"].shape[0]

    def gate(k, a, w):  # the k-th H-wide block of a @ w
        return a @ w[:, k * H:(k + 1) * H]

    if cell == "rnn":
        (h,) = state
        h = np.tanh(x @ p["W_input"] + h @ p["W_hidden"] + p["b_hidden"])
        return h, (h,)
    if cell == "gru":
        (h,) = state
        bi, bh = p["b_input"], p["b_hidden"]
        z = sigmoid(gate(0, x, p["W_input"]) + bi[:H] + gate(0, h, p["W_hidden"]) + bh[:H])
        r = sigmoid(gate(1, x, p["W_input"]) + bi[H:2 * H]
                    + gate(1, h, p["W_hidden"]) + bh[H:2 * H])
        n = np.tanh(gate(2, x, p["W_input"]) + bi[2 * H:]
                    + r * (gate(2, h, p["W_hidden"]) + bh[2 * H:]))
        h = z * h + (1 - z) * n
        return h, (h,)
    assert cell == "lstm", f"no reference for the cell {cell!r}"
    h, c = state
    b = p["b_hidden"]
    pre = [gate(k, x, p["W_input"]) + gate(k, h, p["W_hidden"]) + b[k * H:(k + 1) * H]
           for k in range(4)]
    i, f, g, o = sigmoid(pre[0]), sigmoid(pre[1]), np.tanh(pre[2]), sigmoid(pre[3])
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, (h, c)


def forward(cell, layers, softmax, embedding, vocab_size, ids, state):
    """ids [B, T] ints; state: flat list of [B, H] -> (logits [B, T, V], new flat state)."""
    x = embedding[ids] if embedding is not None else np.eye(vocab_size)[ids]
    n = 2 if cell == "lstm" else 1
    new_state = []
    for li, p in enumerate(layers):
        s = tuple(state[li * n:(li + 1) * n])
        outs = []
        for t in range(ids.shape[1]):
            h, s = step(cell, p, x[:, t], s)
            outs.append(h)
        x = np.stack(outs, axis=1)
        new_state.extend(s)
    return x @ softmax["W_softmax"] + softmax["b_softmax"], new_state
