"""Frozen configuration dataclasses, one per concern.

The library takes these as plain values and never reads global flags; the `flags/` package
turns parsed command-line flags into them. Variants are made with `dataclasses.replace`.
Every check here raises `UsageError`, so a bad value is reported the same way whether it came
from a flag, a test or a `config.json`.
"""

import dataclasses
import math
import os
from typing import Optional
from tfcharrnn.errors import UsageError
from tfcharrnn.models import cells

MODELS = cells.NAMES  # the registry of tfcharrnn/models/cells/
BACKENDS = ("keras", "manual")
LEVELS = ("char", "word")
DATA_FORMATS = ("auto", "text", "csv")
ENCODING_ERRORS = ("strict", "replace", "ignore")
SAMPLING_METHODS = ("sample", "argmax", "top_k", "top_p", "beam")
CHECKPOINT_CHOICES = ("best", "latest")
SCORE_UNITS = ("line", "sentence")
LR_SCHEDULES = ("epoch_decay", "cosine", "linear")
STRATEGIES = ("off", "mirrored", "multi_worker_mirrored")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")

BUNDLED_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                              "tinyshakespeare.txt")


def _precision(value):
    if value:
        _choice("precision", value, PRECISIONS)


def _positive(name, value):
    if value is None or value < 1:
        raise UsageError(f"--{name} must be a positive integer, got {value}; "
                         f"pass --{name}=1 or more")


def _at_most(name, value, limit, why):
    if value > limit:
        raise UsageError(f"--{name}={value:,} is more than {limit:,}, {why}")


def _finite_floats(config):
    """NaN and the infinities are refused for every float setting (absl's float flags parse
    'inf' and 'nan': --learning_rate=inf would run and diverge)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"--{field.name} must be a finite number, got {value}")


def _choice(name, value, choices):
    if value not in choices:
        raise UsageError(f"unknown --{name}={value!r}; choose one of: {', '.join(choices)}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    data_path: str = ""              # text file to train on ("" = the bundled tiny-shakespeare)
    data_format: str = "auto"        # "text", "csv" (one document per row) or "auto" (by name)
    csv_column: str = ""             # CSV column: a header name or 0-based index ("" = first)
    level: str = "char"              # token unit: "char" (code points) or "word" (NLTK words)
    lowercase: Optional[bool] = None  # lowercase the text (None = yes for words, no for chars)
    vocab_size: int = 10000          # word level: most frequent tokens kept, specials included
    encoding: str = "utf-8"          # text encoding of data_path
    encoding_errors: str = "strict"  # undecodable bytes: "strict" (stop), "replace" or "ignore"
    val_fraction: float = 0.1        # tail of the corpus held out for validation
    test_fraction: float = 0.0       # held out after validation, never trained or validated on
    batch_size: int = 64             # number of parallel streams (rows per batch)
    seq_len: int = 100               # tokens per window (truncated-BPTT length)
    val_tokens: int = 1_000_000      # validation while training: this many tokens (0 = all)

    @property
    def resolved_data_path(self) -> str:
        return self.data_path or BUNDLED_CORPUS

    @property
    def resolved_lowercase(self) -> bool:
        return self.level == "word" if self.lowercase is None else self.lowercase

    def __post_init__(self):
        _finite_floats(self)
        _choice("level", self.level, LEVELS)
        _choice("data_format", self.data_format, DATA_FORMATS)
        _choice("encoding_errors", self.encoding_errors, ENCODING_ERRORS)
        if self.level == "word" and self.vocab_size < 4:
            raise UsageError(f"--vocab_size must be at least 4 (3 special tokens and a word), "
                             f"got {self.vocab_size}")
        _positive("batch_size", self.batch_size)
        _positive("seq_len", self.seq_len)
        if self.val_tokens < 0:
            raise UsageError(f"--val_tokens must be 0 (all) or more, got {self.val_tokens}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise UsageError(f"--{name} must be in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise UsageError("--val_fraction + --test_fraction must be below 1 "
                             "so that some text is left for training")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    backend: str = "keras"     # "keras" (Keras RNN layers) or "manual" (explicit weights and loop)
    model: str = "lstm"        # recurrent cell: a name in MODELS (rnn, gru, lstm, ...)
    num_layers: int = 2        # stacked recurrent layers
    hidden_size: int = 256     # units per recurrent layer
    embedding_size: int = 64   # token embedding width (0 = one-hot input)
    dropout: float = 0.0       # dropout between layers and before the softmax, when training
    weight_dropout: float = 0.0  # DropConnect of the recurrent weights, when training
    locked_dropout: bool = False  # --dropout: one mask per stream for the whole window
    precision: str = "float32"  # of the matrix products: float32, mixed_bfloat16, mixed_float16,
    #                             or auto (resolved by models/devices.py before a model is built)

    def __post_init__(self):
        _finite_floats(self)
        _choice("backend", self.backend, BACKENDS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("model", self.model, MODELS)
        _positive("num_layers", self.num_layers)
        _positive("hidden_size", self.hidden_size)
        if self.embedding_size is None or self.embedding_size < 0:
            raise UsageError(f"--embedding_size must be 0 (one-hot) or more, "
                             f"got {self.embedding_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise UsageError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.weight_dropout < 1.0:
            raise UsageError(f"--weight_dropout must be in [0, 1), got {self.weight_dropout}")
        if self.locked_dropout and self.dropout == 0:
            raise UsageError("--locked_dropout holds --dropout's masks over time, but --dropout "
                             "is 0: set --dropout (e.g. --dropout=0.3) or drop --locked_dropout")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    checkpoint_dir: str = "checkpoints/lstm"  # run directory: weights, config.json, vocab.json
    logdir: str = ""                 # TensorBoard directory ("" = <checkpoint_dir>/logs)
    learning_rate: float = 2e-3      # Adam learning rate at epoch 0
    decay_rate: float = 0.97         # epoch_decay: learning rate multiplier per completed epoch
    lr_schedule: str = "epoch_decay"  # "epoch_decay", "cosine" or "linear" (see schedule.py)
    min_lr_ratio: float = 0.1        # cosine, linear: the final learning rate / learning_rate
    warmup_steps: int = 0            # linear warm-up over the first steps (0 = none)
    weight_decay: float = 0.0        # decoupled (AdamW) decay of the weight matrices (0 = none)
    ema_decay: float = 0.0           # evaluate and save an EMA of the weights (0 = off)
    grad_clip: float = 5.0           # global-norm gradient clipping threshold (0 = off)
    num_epochs: int = 20             # stop after this many passes over the training split
    max_steps: int = 0               # stop after this many train steps in total (0 = no limit)
    max_minutes: float = 0.0         # stop after this many minutes of this invocation (0 = none)
    eval_every: int = 200            # validate every this many steps (and at the end)
    save_every: int = 0              # checkpoint every this many steps (0 = at each evaluation)
    keep_checkpoints: int = 3        # how many of the latest checkpoints to keep
    sample_length: int = 200         # length of the text sample logged at each evaluation
    seed: int = 42                   # seeds weights, dropout and logged samples
    preset: str = ""                 # the --preset the values came from ("" = none)

    def __post_init__(self):
        _finite_floats(self)
        if not self.learning_rate > 0:
            raise UsageError(f"--learning_rate must be positive, got {self.learning_rate}")
        if not 0 < self.decay_rate <= 1:
            raise UsageError(f"--decay_rate must be in (0, 1], got {self.decay_rate}")
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not 0 <= self.min_lr_ratio <= 1:
            raise UsageError(f"--min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not 0 <= self.weight_decay < 1:
            raise UsageError(f"--weight_decay must be in [0, 1), got {self.weight_decay}")
        if not 0 <= self.ema_decay < 1:
            raise UsageError(f"--ema_decay must be in [0, 1) (0 = off; e.g. 0.999), "
                             f"got {self.ema_decay}")
        if self.grad_clip < 0:
            raise UsageError(f"--grad_clip must be 0 (off) or positive, got {self.grad_clip}")
        _positive("num_epochs", self.num_epochs)
        _positive("eval_every", self.eval_every)
        _positive("keep_checkpoints", self.keep_checkpoints)
        for name in ("max_steps", "max_minutes", "save_every", "sample_length", "warmup_steps"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name} must be 0 or more, got {getattr(self, name)}")

    @property
    def resolved_logdir(self) -> str:
        return self.logdir or os.path.join(self.checkpoint_dir, "logs")

    @property
    def resolved_save_every(self) -> int:
        return self.save_every or self.eval_every


@dataclasses.dataclass(frozen=True)
class DistributeConfig:
    """Where training runs (see `tfcharrnn.distribute`); it may change when a run resumes."""
    distribution_strategy: str = "off"  # "off" (one device), "mirrored" or "multi_worker_mirrored"
    num_replicas: int = 0            # mirrored: first N GPUs, or N logical CPUs without a GPU
    startup_timeout: float = 300.0   # multi-worker: seconds to wait for every worker to come up

    def __post_init__(self):
        _finite_floats(self)
        _choice("distribution_strategy", self.distribution_strategy, STRATEGIES)
        if self.num_replicas is None or self.num_replicas < 0:
            raise UsageError(f"--num_replicas must be 0 (every GPU) or more, "
                             f"got {self.num_replicas}")
        if self.num_replicas and self.distribution_strategy != "mirrored":
            raise UsageError(f"--num_replicas applies to --distribution_strategy=mirrored, not "
                             f"{self.distribution_strategy}; drop it or pass "
                             f"--distribution_strategy=mirrored")
        if not self.startup_timeout > 0:
            raise UsageError(f"--startup_timeout must be positive (seconds), "
                             f"got {self.startup_timeout}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything `train` needs; `config.json` in the run directory is this, serialized."""
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    distribute: DistributeConfig = DistributeConfig()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(data=_from_dict(DataConfig, d.get("data", {}), "data"),
                   model=_from_dict(ModelConfig, d.get("model", {}), "model"),
                   train=_from_dict(TrainConfig, d.get("train", {}), "train"),
                   distribute=_from_dict(DistributeConfig, d.get("distribute", {}),
                                         "distribute"))


def _from_dict(cls, d, section):
    if not isinstance(d, dict):
        raise ValueError(f"section {section!r} is not an object")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"unknown field(s) in {section!r}: {', '.join(unknown)}")
    kwargs = {}
    for name, value in d.items():
        default = names[name].default
        # JSON has one number type; accept ints for float fields but nothing else.
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if default is None:  # Optional[bool] fields
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"field {section}.{name} should be true, false or null, "
                                 f"got {value!r}")
        elif type(value) is not type(default):
            raise ValueError(f"field {section}.{name} should be {type(default).__name__}, "
                             f"got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


# Fields that may differ between the run on disk and the flags of a resumed run: how long to
# train, how often to evaluate, save or log, and where it runs (the batch is the same global
# batch on any number of replicas). Everything else defines the model, the data stream or the
# optimization and must match.
RESUMABLE_FIELDS = frozenset({
    "train.num_epochs", "train.max_steps", "train.max_minutes", "train.eval_every",
    "train.save_every",
    "train.keep_checkpoints", "train.logdir", "train.sample_length", "train.checkpoint_dir",
    "train.preset", "model.precision",
    "distribute.distribution_strategy", "distribute.num_replicas", "distribute.startup_timeout",
})


def differing_fields(saved: RunConfig, current: RunConfig) -> list:
    """Dotted names of fields that differ and may not differ on resume."""
    a, b = saved.to_dict(), current.to_dict()
    diffs = []
    for section in b:
        for name in b[section]:
            key = f"{section}.{name}"
            if key not in RESUMABLE_FIELDS and a[section][name] != b[section][name]:
                diffs.append(f"{key}: {a[section][name]!r} on disk, {b[section][name]!r} now")
    return diffs


# What one `sample` command may ask for: the samples are drawn side by side and kept until
# printed, and a beam search holds [beam_width, vocabulary] scores per step.
MAX_SAMPLES = 10_000
MAX_SAMPLE_TOKENS = 10_000_000       # --num_samples x the tokens of each
MAX_BEAM_WIDTH = 256


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    checkpoint_dir: str = "checkpoints/lstm"  # run directory written by train
    checkpoint: str = "best"         # which weights: "best" (lowest validation loss) or "latest"
    prime: str = ""                  # text that warms up the state before generating
    length: int = 500                # characters to generate per sample (character level)
    min_length: int = 1              # word level: fewest words in a sentence (else drawn again)
    max_length: int = 50             # word level: most tokens drawn for one sentence
    temperature: float = 1.0         # divides the logits before sampling (<1 = more conservative)
    sampling: str = "sample"         # "sample", "argmax", "top_k", "top_p" or "beam"
    top_k: int = 10                  # candidates kept by --sampling=top_k
    top_p: float = 0.9               # probability mass of the nucleus kept by --sampling=top_p
    beam_width: int = 8              # beams kept by --sampling=beam
    num_samples: int = 1             # independent samples, generated in parallel
    stop: str = ""                   # char level: end each sample at the first occurrence
    interactive: bool = False        # read primes from the terminal, one per line
    seed: int = 0                    # same seed, same text
    precision: str = ""              # of the matrix products ("" = the run's)

    def __post_init__(self):
        _finite_floats(self)
        _choice("checkpoint", self.checkpoint, CHECKPOINT_CHOICES)
        _choice("sampling", self.sampling, SAMPLING_METHODS)
        _precision(self.precision)
        _positive("length", self.length)
        _positive("num_samples", self.num_samples)
        _positive("max_length", self.max_length)
        _at_most("num_samples", self.num_samples, MAX_SAMPLES,
                 "the most one command draws; run it again with another --seed for more")
        if not 0 <= self.min_length <= self.max_length:
            raise UsageError(f"--min_length must be between 0 and --max_length="
                             f"{self.max_length}, got {self.min_length}")
        if self.sampling in ("sample", "top_k", "top_p") and not self.temperature > 0:
            raise UsageError(f"--temperature must be positive with --sampling={self.sampling}, "
                             f"got {self.temperature}; use --sampling=argmax for greedy text")
        if self.sampling == "top_k":
            _positive("top_k", self.top_k)
        if self.sampling == "top_p" and not 0 < self.top_p <= 1:
            raise UsageError(f"--top_p must be in (0, 1], got {self.top_p}; e.g. --top_p=0.9")
        if not -2 ** 63 <= self.seed < 2 ** 63:
            raise UsageError(f"--seed must fit in 64 bits (-2^63 to 2^63 - 1), got {self.seed}")
        if self.sampling == "beam":
            _positive("beam_width", self.beam_width)
            _at_most("beam_width", self.beam_width, MAX_BEAM_WIDTH,
                     "the widest beam search (it keeps beam_width x vocabulary scores)")
            if self.num_samples > self.beam_width:
                raise UsageError(f"--num_samples={self.num_samples} is more than "
                                 f"--beam_width={self.beam_width}: a beam search returns at "
                                 f"most its width; raise --beam_width")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    checkpoint_dir: str = "checkpoints/lstm"  # run directory written by train
    checkpoint: str = "best"         # which weights: "best" or "latest"
    data_path: str = ""              # text file, or prepared directory, to measure (required)
    split: str = "val"               # of a prepared directory: "train", "val" or "test"
    window: int = 1000               # tokens per forward call; the state carries across windows
    precision: str = ""              # of the matrix products ("" = the run's)

    def __post_init__(self):
        _choice("checkpoint", self.checkpoint, CHECKPOINT_CHOICES)
        _choice("split", self.split, ("train", "val", "test"))
        _positive("window", self.window)
        _precision(self.precision)
        if not self.data_path:
            raise UsageError("--data_path is required: the text file to evaluate the model on")


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    checkpoint_dir: str = "checkpoints/lstm"  # run directory written by train
    checkpoint: str = "best"         # which weights: "best" or "latest"
    input: str = ""                  # file of texts to score ("" = standard input)
    unit: str = "line"               # score each "line", or each "sentence" (Punkt-split)
    sort: bool = False               # rank from most to least probable
    window: int = 1000               # tokens per forward call (speed only)
    batch_size: int = 1024           # texts scored at once (speed and memory only)
    precision: str = ""              # of the matrix products ("" = the run's)

    def __post_init__(self):
        _choice("checkpoint", self.checkpoint, CHECKPOINT_CHOICES)
        _choice("unit", self.unit, SCORE_UNITS)
        _positive("window", self.window)
        _positive("batch_size", self.batch_size)
        _precision(self.precision)


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    data: DataConfig = DataConfig()  # the corpus and how to read and split it
    out: str = ""                    # the directory to write (required)
    num_workers: int = 0             # word level: tokenizing processes (0: one per core)
    overwrite: bool = False          # replace a non-empty out (the old one is renamed)

    def __post_init__(self):
        if not self.out:
            raise UsageError("--out is required: the directory to write the prepared data "
                             "to, e.g. --out=data/mybooks")
        if self.num_workers < 0:
            raise UsageError(f"--num_workers must be 0 (one per core) or more, got "
                             f"{self.num_workers}")


EXPORT_FORMATS = ("saved_model", "web")
WEB_WEIGHT_DTYPES = ("float32", "float16")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    checkpoint_dir: str = "checkpoints/lstm"  # run directory written by train
    checkpoint: str = "best"         # which weights: "best" or "latest"
    export_dir: str = ""             # where to write the export (required)
    overwrite: bool = False          # replace a non-empty export_dir (the old one is renamed)
    format: str = "saved_model"      # "saved_model" (TensorFlow) or "web" (a static folder)
    web_weights: str = "float32"     # --format=web: the shards' number type (float16 halves them)

    def __post_init__(self):
        _choice("checkpoint", self.checkpoint, CHECKPOINT_CHOICES)
        _choice("format", self.format, EXPORT_FORMATS)
        _choice("web_weights", self.web_weights, WEB_WEIGHT_DTYPES)
        if not self.export_dir:
            raise UsageError("--export_dir is required: the directory to write the export "
                             "to, e.g. --export_dir=exported/lstm")


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    checkpoint_dir: str = "checkpoints/lstm"  # run directory written by train
    checkpoint: str = "best"         # which weights: "best" or "latest"
    host: str = "127.0.0.1"          # address to listen on (loopback: this machine only)
    port: int = 8000                 # TCP port (0: any free port, printed at start)
    max_length: int = 2000           # most tokens per sample, and in a prime
    max_batch: int = 32              # samples generated together in a lane; more requests wait
    lanes: int = 0                   # batches drawn side by side (0: one per CPU core)
    max_texts: int = 1000            # texts in one score request
    max_body_kb: int = 1024          # largest request body, in KiB
    precision: str = ""              # of the matrix products ("" = the run's)

    def __post_init__(self):
        _choice("checkpoint", self.checkpoint, CHECKPOINT_CHOICES)
        _precision(self.precision)
        for name in ("max_length", "max_batch", "max_texts", "max_body_kb"):
            _positive(name, getattr(self, name))
        if self.lanes < 0:
            raise UsageError(f"--lanes must be 0 (one per CPU core) or more, got {self.lanes}")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535, got {self.port}; e.g. "
                             f"--port=8000 (0: any free port)")
        if not self.host:
            raise UsageError("--host must name an address to listen on, e.g. --host=127.0.0.1 "
                             "(this machine only) or --host=0.0.0.0 (every interface)")


@dataclasses.dataclass(frozen=True)
class PlotConfig:
    logdir: str = "checkpoints"      # a run's logs, or a folder of runs (one curve per run)
    out: str = "curves.png"          # the PNG file to write
    tag: str = "val/loss"            # the TensorBoard scalar to draw

    def __post_init__(self):
        if not self.out.lower().endswith(".png"):
            raise UsageError(f"--out must name a .png file, got {self.out!r}")
        if not self.tag:
            raise UsageError("--tag must name a TensorBoard scalar, e.g. --tag=val/loss")
