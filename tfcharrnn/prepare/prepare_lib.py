"""`python -m tfcharrnn.prepare`: a corpus of any size -> a prepared data directory.

    DATA_DIR/vocab.json     the vocabulary (as a run's vocab.json)
    DATA_DIR/train.bin      the training split's ids   (tokenfile.py: header, then ids)
    DATA_DIR/val.bin        the validation split's ids
    DATA_DIR/test.bin       the test split's ids (when --test_fraction > 0)
    DATA_DIR/meta.json      sources (path, bytes, mtime), settings, counts

The ids are exactly those of the in-memory path (`dataset.build_vocab_and_encode` on
`corpus.read_documents`, then `corpus.split`), made in streaming passes over the sources that
hold a piece of a file (and a few blocks per word-level worker) at a time:
  character level: 1. the characters seen and the token count; 2. the ids;
  word level: 0. the Punkt sample (the first PUNKT_TRAINING_CHARS characters, as
  `WordTokenizer.train` takes them); 1. tokenization, block by block in --num_workers
  processes, in order, into a temporary file of provisional ids (in order of first
  appearance) and the word counts; 2. the vocabulary from the counts, and the provisional ids
  mapped to the final ones, split by position.
Everything is written under DATA_DIR.partial-PID and renamed into place when complete.
"""

import collections
import itertools
import json
import os
import shutil
import sys
import time

import numpy as np

from tfcharrnn.errors import UsageError, cannot_write
from tfcharrnn.prepare import sources, tokenfile

FORMAT = "tfcharrnn-prepared"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
WORK_CHARS = 1 << 20          # word level: text per task handed to a worker
MIN_POOL_TASKS = 4            # fewer tasks than this are tokenized in this process


class SplitWriter:
    """Writes a stream of ids to train.bin, val.bin and test.bin by position."""

    def __init__(self, directory: str, total: int, dtype, val_fraction: float,
                 test_fraction: float):
        n_test = int(round(total * test_fraction))
        n_val = int(round(total * val_fraction))
        self.sizes = {"train": total - n_val - n_test, "val": n_val, "test": n_test}
        names = [n for n in SPLITS if n != "test" or test_fraction > 0]
        self.writers = [(n, tokenfile.Writer(os.path.join(directory, f"{n}.bin"), dtype))
                        for n in names]
        self._limits = np.cumsum([self.sizes[n] for n, _ in self.writers])
        self.position = 0

    def append(self, ids: np.ndarray):
        start = 0
        while start < len(ids):
            index = int(np.searchsorted(self._limits, self.position, side="right"))
            if index >= len(self.writers):
                raise ValueError("more ids than counted")
            end = min(len(ids), start + int(self._limits[index]) - self.position)
            self.writers[index][1].append(ids[start:end])
            self.position += end - start
            start = end

    def close(self):
        for _, writer in self.writers:
            writer.close()

    def abort(self):
        for _, writer in self.writers:
            writer.abort()


# ---- character level ----

def _char_documents(files, dc):
    """The characters' text as pieces: the documents joined by newlines (as dataset does)."""
    for i, document in enumerate(sources.documents(files, dc.encoding, dc.data_format,
                                                   dc.csv_column, dc.encoding_errors)):
        if i:
            yield "\n"
        yield from document


def _lowered(pieces, lowercase: bool):
    for piece in pieces:
        yield piece.lower() if lowercase else piece


def prepare_chars(files, dc, directory: str) -> tuple:
    from tfcharrnn.vocab import CharVocab
    lowercase = dc.resolved_lowercase
    vocab, total = CharVocab.from_chunks(_lowered(_char_documents(files, dc), lowercase),
                                         lowercase)
    writer = SplitWriter(directory, total, tokenfile.id_dtype(len(vocab)), dc.val_fraction,
                         dc.test_fraction)
    try:
        for piece in _char_documents(files, dc):     # encode lowercases, as in memory
            writer.append(vocab.encode(piece, vocab.id_dtype))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return vocab, {"tokens": total}


# ---- word level ----

def punkt_sample(files, dc) -> list:
    """The texts `WordTokenizer.train` reads: each document's beginning, until
    PUNKT_TRAINING_CHARS characters in all."""
    from tfcharrnn.tokenization import PUNKT_TRAINING_CHARS
    budget, texts = PUNKT_TRAINING_CHARS, []
    for document in sources.documents(files, dc.encoding, dc.data_format, dc.csv_column,
                                      dc.encoding_errors):
        if budget <= 0:
            break
        text = ""
        for piece in document:
            text += piece
            if len(text) >= budget:
                break
        texts.append(text[:budget])
        budget -= len(text) if len(text) < budget else budget
    return texts


def _work(files, dc):
    """Tasks for the tokenizers: lists of blocks (`tokenization.blocks`), ~WORK_CHARS each,
    in corpus order."""
    from tfcharrnn.tokenization import blocks
    task, size = [], 0
    for document in sources.documents(files, dc.encoding, dc.data_format, dc.csv_column,
                                      dc.encoding_errors):
        for block in blocks(document):
            task.append(block)
            size += len(block)
            if size >= WORK_CHARS:
                yield task
                task, size = [], 0
    if task:
        yield task


_TOKENIZER = None


def _start_worker(settings: dict):
    global _TOKENIZER
    from tfcharrnn.tokenization import WordTokenizer
    _TOKENIZER = WordTokenizer.from_dict(settings)


def _tokenize(task: list) -> tuple:
    """A task's text, tokenized and counted where it runs (a worker), so that what comes back
    is small: (its distinct words in order of first appearance, their counts, its ids
    uint32 [n] with 1 and 2 for sentence start and end and 3 + i for its word i, the number
    of sentences)."""
    local, counts, ids, sentences = {}, [], [], 0
    for block in task:
        for words in _TOKENIZER.tokenize_block(block):
            sentences += 1
            ids.append(1)
            for w in words:
                i = local.get(w)
                if i is None:
                    i = local[w] = len(local)
                    counts.append(0)
                counts[i] += 1
                ids.append(i + 3)
            ids.append(2)
    return list(local), counts, np.asarray(ids, np.uint32), sentences


def _tokenized(tasks, tokenizer, workers: int):
    """Each task's sentences, in task order, from `workers` processes (1: this one). At most
    2 x workers tasks are in flight, so memory stays bounded whatever the corpus."""
    tasks = iter(tasks)
    head = list(itertools.islice(tasks, MIN_POOL_TASKS))
    tasks = itertools.chain(head, tasks)
    if workers <= 1 or len(head) < MIN_POOL_TASKS:     # small: not worth starting processes
        _start_worker(tokenizer.to_dict())
        for task in tasks:
            yield _tokenize(task)
        return
    import multiprocessing
    # spawn: the caller may hold TensorFlow's threads (train prepares on first use)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start_worker,
                      initargs=(tokenizer.to_dict(),)) as pool:
        pending = collections.deque()
        for task in tasks:
            pending.append(pool.apply_async(_tokenize, (task,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def prepare_words(files, dc, directory: str, workers: int, log) -> tuple:
    from tfcharrnn.tokenization import WordTokenizer
    from tfcharrnn.vocab import SPECIAL_TOKENS, WordVocab
    tokenizer = WordTokenizer.train(punkt_sample(files, dc), dc.resolved_lowercase)
    provisional = {}                       # word -> provisional id (3, 4, ... first seen)
    counts = {}
    scratch = os.path.join(directory, "provisional.tmp")
    sentences = 0
    scratch_writer = tokenfile.Writer(scratch, np.uint32)
    try:
        for words, word_counts, local_ids, n in _tokenized(_work(files, dc), tokenizer,
                                                           workers):
            to_provisional = np.array(
                [0, 1, 2] + [provisional.setdefault(w, len(provisional) + 3) for w in words],
                np.uint32)
            for w, c in zip(words, word_counts):
                counts[w] = counts.get(w, 0) + c
            sentences += n
            scratch_writer.append(to_provisional[local_ids])
        scratch_writer.close()
    except BaseException:
        scratch_writer.abort()
        raise
    if sentences == 0:
        raise UsageError("the corpus has no words; pass a file with text in it")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = max(0, dc.vocab_size - len(SPECIAL_TOKENS))
    vocab = WordVocab([w for w, _ in ranked[:keep]], tokenizer, counts=dict(counts))
    final = np.zeros(len(provisional) + 3, np.uint32)          # unknown words -> 0
    final[1], final[2] = vocab.start_id, vocab.end_id
    final[np.fromiter(provisional.values(), np.int64, len(provisional))] = \
        vocab.word_ids(provisional.keys())
    total = _remap(scratch, final, directory, tokenfile.id_dtype(len(vocab)), dc)
    log(f"{sentences:,} sentences parsed; {vocab.summary()}")
    return vocab, {"tokens": total, "sentences": sentences}


def _remap(scratch: str, final: np.ndarray, directory: str, dtype, dc) -> int:
    """Writes the splits of the provisional ids in `scratch`, mapped by `final`; returns
    their count. Read in chunks with plain reads, not mapped: a mapping would keep every
    page read resident, and this reads all of them."""
    _, total = tokenfile.header(scratch)
    writer = SplitWriter(directory, total, dtype, dc.val_fraction, dc.test_fraction)
    try:
        with open(scratch, "rb") as f:
            f.seek(tokenfile.HEADER_BYTES)
            while True:
                ids = np.fromfile(f, np.dtype("<u4"), count=1 << 22)
                if not len(ids):
                    break
                writer.append(final[ids])
        writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        os.remove(scratch)
    return total


# ---- the directory ----

def prepare(dc, out_dir: str, workers: int = 0, overwrite: bool = False, log=None) -> dict:
    """Prepares the corpus of `dc` (a DataConfig) into out_dir; returns meta.json's dict."""
    log = log or (lambda m: print(m, file=sys.stderr))
    files, skipped = sources.list_files(dc.resolved_data_path)
    if skipped:
        log(f"skipped {len(skipped)} file(s) that are not text, e.g. {skipped[0]}")
    workers = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count() or 1)
    target = os.path.abspath(out_dir)
    if os.path.exists(target) and not os.path.isdir(target):
        raise UsageError(f"--out is a file, not a directory: {out_dir}; pass another --out")
    if os.path.isdir(target) and os.listdir(target) and not overwrite:
        raise UsageError(f"--out {out_dir} is not empty; pass a new --out, or --overwrite to "
                         f"replace it (the old one is kept, renamed)")
    partial = f"{target}.partial-{os.getpid()}"
    started = time.time()
    try:
        os.makedirs(partial)
        meta = _prepare_into(files, dc, partial, workers, log)
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        raise cannot_write("--out", out_dir, e) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    meta["seconds"] = round(time.time() - started, 2)
    _write_json(os.path.join(partial, "meta.json"), meta)
    if os.path.isdir(target) and os.listdir(target):
        moved = f"{target}.old-{time.strftime('%Y%m%d-%H%M%S')}"
        os.rename(target, moved)
        log(f"--overwrite: moved the previous data directory to {moved}")
    elif os.path.isdir(target):
        os.rmdir(target)
    os.rename(partial, target)
    return meta


def _prepare_into(files, dc, directory: str, workers: int, log) -> dict:
    if dc.level == "char":
        vocab, counts = prepare_chars(files, dc, directory)
    else:
        vocab, counts = prepare_words(files, dc, directory, workers, log)
    sizes = {name: tokenfile.header(os.path.join(directory, f"{name}.bin"))[1]
             for name in SPLITS if os.path.exists(os.path.join(directory, f"{name}.bin"))}
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        f.write(vocab.to_json())
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "sources": sources.fingerprint(files, dc.resolved_data_path),
            "settings": settings(dc),
            "vocab_size": len(vocab), "dtype": str(tokenfile.id_dtype(len(vocab))),
            "counts": {**counts, **{name: int(n) for name, n in sizes.items()}}}
    if dc.level == "word":     # the Punkt model (in vocab.json) learned from this much text
        from tfcharrnn.tokenization import PUNKT_TRAINING_CHARS
        meta["punkt_training_chars"] = PUNKT_TRAINING_CHARS
    return meta


def settings(dc) -> dict:
    """The data settings the ids depend on (a prepared directory is reused only for these)."""
    return {"level": dc.level, "lowercase": dc.resolved_lowercase,
            "vocab_size": dc.vocab_size if dc.level == "word" else None,
            "data_format": dc.data_format, "csv_column": dc.csv_column,
            "encoding": dc.encoding, "encoding_errors": dc.encoding_errors,
            "val_fraction": dc.val_fraction, "test_fraction": dc.test_fraction}


def _write_json(path: str, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
