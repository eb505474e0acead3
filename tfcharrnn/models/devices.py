"""Where the recurrent layers run, asked in one place (the tests make it report a GPU).

On a GPU the Keras back-end's LSTM and GRU layers hand their loop back to Keras, whose
`inner_loop` runs cuDNN's fused kernels there (`keras/src/backend/tensorflow/rnn.py`:
`cudnn_ok`, `_is_gpu_available`); the hand-written kernels of `cells/` are for CPUs. The
basic RNN (Keras has no cuDNN path for it) and the manual back-end run their own loops on
whatever device TensorFlow places them, the GPU included. The weights are the same variables
either way, so checkpoints move between CPU and GPU runs.
"""

import tensorflow as tf


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU: Keras' own test for taking its cuDNN path."""
    return bool(tf.config.list_logical_devices("GPU"))


# ---- --precision=auto ----
# bfloat16 products are fast only where the hardware multiplies bfloat16: on CPUs with AMX
# (`amx_bf16`, Intel Xeon 4th generation on) or AVX512-BF16 (`avx512_bf16`: Cooper Lake, AMD
# Zen 4 on); elsewhere TensorFlow converts and multiplies in float32, slower than float32
# itself. On GPUs: bfloat16 from compute capability 8.0 (Ampere), float16 tensor cores on 7.x.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> set:
    """The CPU's feature flags as `lscpu` lists them (empty where /proc/cpuinfo is absent)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def gpu_compute_capabilities() -> list:
    """(major, minor) of each GPU TensorFlow sees."""
    found = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        found.append(tuple(details.get("compute_capability", (0, 0))))
    return found


def resolve_precision(precision: str) -> str:
    """`auto` -> the fastest precision this machine multiplies in hardware; any other value
    as given. With GPUs, the weakest GPU decides."""
    if precision != "auto":
        return precision
    capabilities = gpu_compute_capabilities()
    if capabilities:
        weakest = min(capabilities)
        return ("mixed_bfloat16" if weakest >= (8, 0)
                else "mixed_float16" if weakest >= (7, 0) else "float32")
    return "mixed_bfloat16" if cpu_flags() & set(BF16_CPU_FLAGS) else "float32"
