"""The recurrent cells, one module each, found by name.

A cell module defines its equations once (`base.Cell`): the training loop, the evaluation
wavefront, the folded one-token step of sampling, the Keras layer and the weight mapping all
follow from them, and a cell may add fast paths (a hand-written backward pass, low-precision
variants). Adding a cell is one module here and one line below: `config.MODELS` and the
`--model` flag's choices come from this table. This file imports nothing, so the
configuration can list the cells without loading TensorFlow.
"""

import importlib

REGISTRY = {
    "rnn": "tfcharrnn.models.cells.rnn",
    "gru": "tfcharrnn.models.cells.gru",
    "lstm": "tfcharrnn.models.cells.lstm",
    "mingru": "tfcharrnn.models.cells.mingru",
}

NAMES = tuple(REGISTRY)


def get(name: str):
    """The `base.Cell` registered as `name`; an unknown name is an error, never a default."""
    try:
        module = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}: expected one of {', '.join(NAMES)}") from None
    return importlib.import_module(module).CELL
