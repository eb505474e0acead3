"""Where the recurrent layers run, asked in one place (the tests make it report a GPU).

On a GPU the Keras back-end's LSTM and GRU layers hand their loop back to Keras, whose
`inner_loop` runs cuDNN's fused kernels there (`keras/src/backend/tensorflow/rnn.py`:
`cudnn_ok`, `_is_gpu_available`); the hand-written kernels of `bptt.py` are for CPUs. The
basic RNN (Keras has no cuDNN path for it) and the manual back-end run their own loops on
whatever device TensorFlow places them, the GPU included. The weights are the same variables
either way, so checkpoints move between CPU and GPU runs.
"""

import tensorflow as tf


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU: Keras' own test for taking its cuDNN path."""
    return bool(tf.config.list_logical_devices("GPU"))
