"""Export a trained run as a TensorFlow SavedModel: python -m tfcharrnn.export.

`module.py` builds the exported module (weights, vocabulary and tokenization in the graph;
signatures generate, score, step and vocabulary); `export_lib.py` restores a run and writes
the SavedModel; `__main__.py` is the command.
"""
