"""Read a corpus from disk and split it into train / validation / test.

The splits are contiguous, like char-rnn and nanoGPT: the training text is the head of the
file, validation the tail (and test, if asked for, the very end), so no sentence is shared
between splits and the streams of each split read text in its natural order.
"""

import os

from tfcharrnn.errors import UsageError


def read_text(path: str, encoding: str = "utf-8") -> str:
    """Returns the whole file as a string, or raises a one-line `UsageError`."""
    if not os.path.exists(path):
        raise UsageError(f"data file not found: {path}; pass --data_path=<a text file>")
    if os.path.isdir(path):
        raise UsageError(f"--data_path is a directory, not a file: {path}; "
                         f"pass the path of a text file inside it")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise UsageError(f"data file is empty: {path}; pass a file that contains text")
    if b"\x00" in raw[:65536] and encoding.lower().replace("-", "") not in ("utf16", "utf32"):
        raise UsageError(f"data file looks binary (it contains NUL bytes): {path}; "
                         f"pass a text file")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise UsageError(f"data file is not valid {encoding}: byte {e.start} "
                         f"(0x{raw[e.start]:02x}) of {path}; pass --encoding=<its encoding>, "
                         f"e.g. --encoding=latin-1") from None
    except LookupError:
        raise UsageError(f"unknown --encoding={encoding!r}; use a Python codec name "
                         f"such as utf-8 or latin-1") from None


def split(ids, val_fraction: float, test_fraction: float = 0.0):
    """Cuts a 1-D id array into contiguous (train, val, test) parts, as views (no copy).

    Returns:
      train, val, test: 1-D arrays; val is the tail before test, test is the very end.
    """
    n = len(ids)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    return ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]
