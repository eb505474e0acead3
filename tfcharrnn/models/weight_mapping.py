"""Copy weights between the Keras and the manual back-end (same config, same vocabulary).

Both back-ends use Keras' gate order and conventions (LSTM: i, f, g, o; GRU: z, r, n with
reset_after=True, whose Keras bias [2, 3H] is the manual back-end's b_input and b_hidden), so
the mapping is a one-to-one copy of tensors; each cell lists its own (`Cell.keras_weights`):

  Keras                                   manual
  embedding/embeddings [V, E]             embedding
  <cell>_i kernel [I, G*H]                W_input_i
  <cell>_i recurrent_kernel [H, G*H]      W_hidden_i
  <cell>_i bias [G*H]                     b_hidden_i
  GRU: <cell>_i bias [2, 3H]              b_input_i = bias[0], b_hidden_i = bias[1]
  softmax kernel [H, V], bias [V]         W_softmax, b_softmax
"""


def _pairs(keras_model, manual_model):
    """[(keras variable, manual variable, row or None)] in a fixed order."""
    if keras_model.config.model != manual_model.config.model:
        raise ValueError("the two models have different cells")
    pairs = []
    if keras_model.embedding is not None:
        pairs.append((keras_model.embedding.embeddings, manual_model.embedding, None))
    cell = keras_model.cell
    for layer, params in zip(keras_model.rnn_layers, manual_model.layers):
        pairs.extend((var, params[name], row)
                     for name, var, row in cell.keras_weights(layer.cell))
    pairs.append((keras_model.softmax.kernel, manual_model.softmax["W_softmax"], None))
    pairs.append((keras_model.softmax.bias, manual_model.softmax["b_softmax"], None))
    return pairs


def keras_to_manual(keras_model, manual_model):
    for k, m, row in _pairs(keras_model, manual_model):
        value = k.numpy() if row is None else k.numpy()[row]
        m.assign(value.astype(m.dtype.as_numpy_dtype))  # manual may be float64


def manual_to_keras(manual_model, keras_model):
    for k, m, row in _pairs(keras_model, manual_model):
        value = m.numpy().astype(k.numpy().dtype)
        if row is None:
            k.assign(value)
        else:
            full = k.numpy()
            full[row] = value
            k.assign(full)
