"""One measurement per process, called by `run.py`; prints one JSON line.

    python benchmarks/measure.py train --backend=manual --cell=lstm --hidden_size=512 ...

Every function warms up first (tracing, allocator, caches), then times `--repeats` blocks and
returns all of them, so the caller can take medians. Nothing here passes or fails.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

VOCAB = 65  # tiny-shakespeare's character vocabulary


def _timed_blocks(run_block, repeats: int) -> list:
    """Seconds of each of `repeats` calls of run_block() (which must block until done)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_block()
        times.append(time.perf_counter() - start)
    return times


def _steps_per_second(step, batches, state, warmup: int, steps: int, repeats: int) -> list:
    """Calls state = step(x, y, state) round-robin over `batches`; returns steps/s of each
    timed block. `step` returns (a scalar to wait on, the new state)."""
    carry = {"state": state, "i": 0}

    def run(n):
        for _ in range(n):
            value, carry["state"] = step(*batches[carry["i"] % len(batches)], carry["state"])
            carry["i"] += 1
        float(value)  # wait for the last step

    run(warmup)
    return [steps / t for t in _timed_blocks(lambda: run(steps), repeats)]


def _import_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tfcharrnn.cli import import_tensorflow
    import_tensorflow(-1)
    import tensorflow as tf
    return tf


def _model(args):
    from tfcharrnn.config import ModelConfig
    from tfcharrnn.models import build_model
    return build_model(ModelConfig(backend=args.backend, model=args.cell,
                                   num_layers=args.num_layers, hidden_size=args.hidden_size,
                                   embedding_size=args.embedding_size,
                                   precision=args.precision), VOCAB)


def _batches(args, count=4):
    import numpy as np
    rng = np.random.default_rng(0)
    return [(rng.integers(0, VOCAB, (args.batch_size, args.seq_len)).astype(np.int32),
             rng.integers(0, VOCAB, (args.batch_size, args.seq_len)).astype(np.int32))
            for _ in range(count)]


def matmul(args):
    """float32 GFLOP/s of a large square matmul in TensorFlow: the machine's ceiling."""
    tf = _import_tf()
    n = 2048
    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    fn = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    for _ in range(3):
        fn().numpy()
    times = _timed_blocks(lambda: [fn() for _ in range(4)][-1].numpy(), args.repeats)
    return [4 * 2 * n ** 3 / t / 1e9 for t in times]


def matvec(args):
    """float32 GFLOP/s of a chain of dependent [1, 1024] x [1024, 2048] products (the second
    layer of the 2 x 512 LSTM, one stream: 8 MB of weights per product, from cache), best of
    NumPy and TensorFlow's XLA-compiled loop: the ceiling of one-stream sampling."""
    tf = _import_tf()
    import numpy as np
    k, n, count = 1024, 2048, 2000
    w = np.random.default_rng(0).normal(0, 0.03, (k, n)).astype(np.float32)

    def numpy_chain():
        h = np.ones([1, k], np.float32)
        for _ in range(count):
            h = np.tanh((h @ w).reshape(2, k).sum(0, keepdims=True))  # [1, n] -> next [1, k]

    w_tf = tf.constant(w)

    @tf.function(jit_compile=True)
    def tf_chain(h):
        for _ in tf.range(count):
            h = tf.tanh(tf.reduce_sum(tf.reshape(tf.matmul(h, w_tf), [2, k]), 0, keepdims=True))
        return h

    tf_run = lambda: tf_chain(tf.ones([1, k])).numpy()  # noqa: E731
    numpy_chain(), tf_run()
    flops = 2 * k * n * count
    return [max(flops / a, flops / b) / 1e9
            for a, b in zip(_timed_blocks(numpy_chain, args.repeats),
                            _timed_blocks(tf_run, args.repeats))]


def train(args):
    """Characters per second of the real train step (forward, backward, clipping, Adam)."""
    tf = _import_tf()
    import keras
    from tfcharrnn import steps
    model = _model(args)
    optimizer = keras.optimizers.Adam(2e-3)
    optimizer.build(model.trainable_variables)
    train_fn = steps.compile_train_step(model, optimizer, 5.0)
    batches = [tuple(tf.constant(a) for a in b) for b in _batches(args)]

    def step(x, y, state):
        loss, _, state = train_fn(x, y, state)
        return loss, state

    rates = _steps_per_second(step, batches, model.initial_state(args.batch_size),
                              args.warmup, args.steps, args.repeats)
    return [r * args.batch_size * args.seq_len for r in rates]


def train_torch(args):
    """The same model and step in PyTorch: nn.RNN/GRU/LSTM, detached state, Adam, clipping;
    with --precision=mixed_bfloat16 the forward pass runs under CPU autocast to bfloat16
    (PyTorch's mixed precision; the loss in float32)."""
    import contextlib
    import torch
    torch.manual_seed(0)
    layer = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[args.cell]

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(VOCAB, args.embedding_size)
            self.rnn = layer(args.embedding_size, args.hidden_size, args.num_layers,
                             batch_first=True)
            self.softmax = torch.nn.Linear(args.hidden_size, VOCAB)

        def forward(self, x, state):
            y, state = self.rnn(self.embedding(x), state)
            return self.softmax(y), state

    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    batches = [tuple(torch.from_numpy(a).long() for a in b) for b in _batches(args)]
    zeros = torch.zeros(args.num_layers, args.batch_size, args.hidden_size)

    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) \
        if args.precision == "mixed_bfloat16" else contextlib.nullcontext

    def step(x, y, state):
        with autocast():
            logits, state = model(x, state)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, VOCAB),
                                                 y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        # Truncated BPTT: carry the state, detached from this window's graph.
        return loss, (tuple(s.detach().float() for s in state) if isinstance(state, tuple)
                      else state.detach().float())

    state = (zeros, zeros.clone()) if args.cell == "lstm" else zeros
    rates = _steps_per_second(step, batches, state, args.warmup, args.steps, args.repeats)
    return [r * args.batch_size * args.seq_len for r in rates]


def evaluate(args):
    """Characters per second of the forward-only evaluation step at the training shape."""
    tf = _import_tf()
    from tfcharrnn import steps
    model = _model(args)
    eval_fn = steps.compile_eval_step(model)
    batches = [tuple(tf.constant(a) for a in b) for b in _batches(args)]

    def step(x, y, state):
        total, _, state = eval_fn(x, y, state)
        return total, state

    # 3x the training steps per block: a forward step is ~3x shorter.
    rates = _steps_per_second(step, batches, model.initial_state(args.batch_size),
                              args.warmup, args.steps * 3, args.repeats)
    return [r * args.batch_size * args.seq_len for r in rates]


def sample(args):
    """Characters per second generated by the real sampler, `--streams` rows at once."""
    _import_tf()
    import numpy as np
    from tfcharrnn.decoding import sampling
    model = _model(args)
    sampler = sampling.for_model(model, "sample", temperature=1.0, seed=0, chunk=args.chunk)
    prime = np.zeros([args.streams, 1], np.int32)
    state = model.initial_state(args.streams)

    def run():
        for _ in sampler.generate(prime, state, args.tokens):
            pass

    run()
    times = _timed_blocks(run, args.repeats)
    return [args.streams * args.tokens / t for t in times]


def _lines(count: int) -> list:
    """The first `count` non-empty lines of the bundled corpus (the first 10,000: mean 32.4
    characters)."""
    from tfcharrnn.config import BUNDLED_CORPUS
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    return lines[:count]


def score(args):
    """Lines per second scored as `score` does (`--method=batched`, `--batch_size` at a time)
    or as it did before, one line at a time from a zero state (`--method=single`), over
    `--lines` short lines. The model's weights are random: the speed does not depend on them."""
    _import_tf()
    import numpy as np
    from tfcharrnn.evaluation import BatchScorer, StreamScorer
    model = _model(args)
    table = {c: i for i, c in enumerate(sorted(set("".join(_lines(10 ** 9)))))}
    sequences = [np.array([table[c] for c in line], np.int32) for line in _lines(args.lines)]
    if args.method == "batched":
        scorer = BatchScorer(model, batch_size=args.batch_size)
        run = lambda batch: scorer.score(batch)  # noqa: E731
    else:
        scorer = StreamScorer(model)
        run = lambda batch: [scorer.score(ids) for ids in batch]  # noqa: E731
    # Warm-up: traces the graphs and compiles the gates for the row counts met (batched: all
    # of them, so the timed blocks measure the steady state; a first `score` call of 10,000
    # lines pays ~3 s of it).
    run(sequences if args.method == "batched" else sequences[:2 * args.batch_size])
    return [len(sequences) / t for t in _timed_blocks(lambda: run(sequences), args.repeats)]


def evaluate_file(args):
    """Characters per second of `evaluate`: the held-out tail (111,539 characters) as one
    stream, windows of 1,000."""
    _import_tf()
    import numpy as np
    from tfcharrnn.config import BUNDLED_CORPUS
    from tfcharrnn.evaluation import StreamScorer
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        text = f.read()
    table = {c: i for i, c in enumerate(sorted(set(text)))}
    tail = text[-round(0.1 * len(text)):][:args.tokens]
    ids = np.array([table[c] for c in tail], np.int32)
    scorer = StreamScorer(_model(args))
    scorer.score(ids[:3000])
    return [(len(ids) - 1) / t for t in _timed_blocks(lambda: scorer.score(ids), args.repeats)]


def quality(args):
    """A real training run: `train --preset=cpu_hour` (the 2 x 512 LSTM with its dropout and
    weight dropout, cosine learning rate) for `--steps` steps instead of its hour (the cosine
    spans those steps), in `--precision`, on the bundled corpus: the validation loss at each
    evaluation (every quarter) and the minutes, to compare precisions after the same steps."""
    import subprocess
    import tempfile
    from tfcharrnn.plot_lib import read_curve
    quarter = max(1, args.steps // 4)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tfcharrnn.train", "--preset=cpu_hour",
                        "--max_minutes=0", f"--max_steps={args.steps}",
                        f"--eval_every={quarter}", f"--precision={args.precision}",
                        f"--checkpoint_dir={tmp}/run"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        minutes = (time.perf_counter() - start) / 60.0
        _, values = read_curve(os.path.join(tmp, "run", "logs"), "val_loss")
    return {"val_loss": values[-1], "curve": values, "steps": args.steps, "minutes": minutes}


def prepare(args):
    """Seconds and peak memory to read, build the vocabulary of and encode a text file."""
    from tfcharrnn import dataset
    from tfcharrnn.config import DataConfig
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    config = DataConfig(data_path=args.path)
    vocab, ids = dataset.build_vocab_and_encode(config, dataset.read_corpus(config))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak_rss_bytes": peak, "rss_before_bytes": before,
            "file_bytes": os.path.getsize(args.path), "ids_bytes": ids.nbytes,
            "ids_dtype": str(ids.dtype), "vocab": len(vocab)}


def _current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def train_memory(args):
    """Resident memory of a real training loop on the corpus at `--path`: after TensorFlow and
    the model are up, after the data is prepared, and after `--steps` train steps."""
    tf = _import_tf()
    import keras
    from tfcharrnn import steps, train_lib
    from tfcharrnn.config import DataConfig, RunConfig
    model = _model(args)
    optimizer = keras.optimizers.Adam(1e-3)
    train_step = steps.compile_train_step(model, optimizer, 5.0)
    state = model.initial_state(args.batch_size)
    warm = _batches(args, count=1)[0]
    train_step(tf.constant(warm[0]), tf.constant(warm[1]), state)[0].numpy()
    before = _current_rss()
    config = RunConfig(data=DataConfig(data_path=args.path, batch_size=args.batch_size,
                                       seq_len=args.seq_len))
    data = train_lib.prepare_data(config, log=lambda *a: None)
    prepared = _current_rss()
    for i in range(args.steps):
        x, y = data.train[i % len(data.train)]
        loss, _, state = train_step(tf.constant(x), tf.constant(y), state)
    loss.numpy()
    ids = data.train._inputs
    while ids.base is not None:  # the batches are views of the one encoded array
        ids = ids.base
    return {"rss_before_data": before, "rss_after_prepare": prepared,
            "rss_after_training": _current_rss(), "file_bytes": os.path.getsize(args.path),
            "ids_bytes": ids.nbytes, "steps": args.steps}


def measure(argv=None):
    """Parses the command line (`argv`, default sys.argv[1:]) and returns the measurement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["matmul", "matvec", "train", "train_torch", "evaluate",
                                         "sample", "prepare", "train_memory", "score",
                                         "evaluate_file", "quality"])
    parser.add_argument("--backend", default="manual")
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--hidden_size", type=int, default=512)
    parser.add_argument("--embedding_size", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--seq_len", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--chunk", type=int, default=256)
    parser.add_argument("--path")
    parser.add_argument("--method", default="batched", choices=["batched", "single"])
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--lines", type=int, default=10000)
    args = parser.parse_args(argv)
    return args, globals()[args.what](args)


def main():
    args, result = measure()
    print(json.dumps(result))
    if isinstance(result, list):
        print(f"{args.what}: median {statistics.median(result):,.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
