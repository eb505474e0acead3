"""A prepared data directory as training reads it: its settings, vocabulary and ids.

`train --data_path=DATA_DIR` trains from a directory made by `python -m tfcharrnn.prepare`;
`train --data_path=FILE_OR_FOLDER` prepares the corpus into the run directory
(RUN_DIR/data) the first time and reuses it when the run resumes, after checking that the
sources are what they were. Either way the ids are memory-mapped (`tokenfile.read`): a batch
reads its windows from the page cache, so a run's resident memory does not grow with the
corpus.
"""

import dataclasses
import json
import os

from tfcharrnn.errors import UsageError
from tfcharrnn.prepare import prepare_lib, sources, tokenfile

RUN_DATA = "data"          # the run directory's prepared copy of its corpus
NOTED_BYTES = 64 << 20     # preparing more than this is announced


def is_prepared(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "meta.json"))


def read_meta(directory: str) -> dict:
    path = os.path.join(directory, "meta.json")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("format") != prepare_lib.FORMAT:
            raise ValueError
    except (OSError, ValueError, RecursionError, AttributeError):
        raise UsageError(f"{path} is missing or damaged; prepare the data again "
                         f"(python -m tfcharrnn.prepare)") from None
    if meta.get("format_version") != prepare_lib.FORMAT_VERSION:
        raise UsageError(f"{directory} was prepared in format {meta.get('format_version')}; "
                         f"this tfcharrnn reads format {prepare_lib.FORMAT_VERSION}: prepare "
                         f"the data again")
    if not os.path.isfile(os.path.join(directory, "vocab.json")):
        raise UsageError(f"{directory} has no vocab.json; prepare the data again "
                         f"(python -m tfcharrnn.prepare)")
    return meta


def adopt(dc):
    """The data config with a prepared directory's settings (how its ids were made), when
    data_path is one; else `dc` unchanged."""
    if not is_prepared(dc.resolved_data_path):
        return dc
    s = read_meta(dc.resolved_data_path)["settings"]
    return dataclasses.replace(dc, level=s["level"], lowercase=s["lowercase"],
                               vocab_size=s["vocab_size"] or dc.vocab_size,
                               data_format=s["data_format"], csv_column=s["csv_column"],
                               encoding=s["encoding"], encoding_errors=s["encoding_errors"],
                               val_fraction=s["val_fraction"], test_fraction=s["test_fraction"])


def ensure(dc, run_dir: str, workers: int = 0, log=print) -> str:
    """The prepared directory to train from: data_path itself when it is one, else
    RUN_DIR/data, prepared now unless it already holds these sources with these settings."""
    if is_prepared(dc.resolved_data_path):
        return dc.resolved_data_path
    directory = os.path.join(run_dir, RUN_DATA)
    if is_prepared(directory):
        meta = read_meta(directory)
        files, _ = sources.list_files(dc.resolved_data_path)
        what = sources.changed(meta["sources"], files, dc.resolved_data_path)
        if what:
            raise UsageError(f"the training data changed since this run prepared it: {what}; "
                             f"resume with the original data, or train into a new "
                             f"--checkpoint_dir")
        if meta["settings"] != prepare_lib.settings(dc):
            raise UsageError(f"{directory} was prepared with other data settings; pass the "
                             f"run's settings, or train into a new --checkpoint_dir")
        return directory
    files, _ = sources.list_files(dc.resolved_data_path)
    if sum(os.path.getsize(f) for f in files) > NOTED_BYTES:     # it takes a while: say so
        log(f"preparing {dc.resolved_data_path} into {directory} (once: a resumed run "
            f"reuses it)")
    prepare_lib.prepare(dc, directory, workers, overwrite=True, log=log)
    return directory


def load(directory: str):
    """(vocab, train ids, val ids) of a prepared directory; the ids memory-mapped (val: empty
    when it has none)."""
    from tfcharrnn.vocab import vocab_from_dict
    meta = read_meta(directory)
    try:
        with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as f:
            vocab = vocab_from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise UsageError(f"{directory}/vocab.json is damaged; prepare the data again") from None
    if len(vocab) != meta.get("vocab_size"):
        raise UsageError(f"{directory}/vocab.json has {len(vocab)} tokens and meta.json says "
                         f"{meta.get('vocab_size')}: the directory is damaged or mixed; "
                         f"prepare the data again")
    # Reading the ids is left to the batches: nothing here touches more than the headers.
    train = tokenfile.read(os.path.join(directory, "train.bin"))
    val_path = os.path.join(directory, "val.bin")
    val = tokenfile.read(val_path) if os.path.exists(val_path) else train[:0]
    return vocab, train, val


def fingerprint(vocab, train, val) -> int:
    """An int64 of a run's data: the vocabulary, the batches' shapes and the first and last
    4,096 ids of each split (what workers compare: two pages of each, not the corpus; a
    column of every stream would map pages all over the file)."""
    import hashlib

    import numpy as np
    digest = hashlib.sha256(json.dumps([vocab.level, list(vocab.tokens)]).encode())
    for batches in (train, val):
        if batches is None:
            continue
        digest.update(np.array([len(batches), batches.batch_size, batches.seq_len]).tobytes())
        ids = batches.ids
        digest.update(np.asarray(ids[:4096], np.int64).tobytes())
        digest.update(np.asarray(ids[-4096:], np.int64).tobytes())
    return int.from_bytes(digest.digest()[:8], "little", signed=True)
