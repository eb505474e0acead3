"""absl flag definitions (one `define_*` per concern) and flags -> config getters."""

from absl import flags

from flags import presets
from tfcharrnn import config as cfg

FLAGS = flags.FLAGS
_D, _M, _T = cfg.DataConfig, cfg.ModelConfig, cfg.TrainConfig
_S, _E, _C = cfg.SampleConfig, cfg.EvalConfig, cfg.ScoreConfig
_X, _P, _X2 = cfg.DistributeConfig, cfg.PlotConfig, cfg.ExportConfig
_W, _R = cfg.ServeConfig, cfg.PrepareConfig


def define_data_flags(fv=FLAGS):
    _define_corpus_flags(fv)
    flags.DEFINE_integer("batch_size", _D.batch_size, "Parallel streams per batch.",
                         flag_values=fv)
    flags.DEFINE_integer("seq_len", _D.seq_len,
                         "Tokens per training window (truncated-BPTT length).", flag_values=fv)
    flags.DEFINE_integer("val_tokens", _D.val_tokens,
                         "Validation during training reads the first this many tokens of the "
                         "validation split (0: all of it); evaluate reads all.",
                         flag_values=fv)


def _define_corpus_flags(fv):
    """What the ids depend on: train's and prepare's."""
    flags.DEFINE_string("data_path", _D.data_path,
                        "What to train on: a text or CSV file, a folder of them, a glob "
                        "(.gz, .bz2, .xz read compressed), or a directory made by "
                        "python -m tfcharrnn.prepare (default: the bundled tiny-shakespeare).",
                        flag_values=fv)
    flags.DEFINE_enum("data_format", _D.data_format, cfg.DATA_FORMATS,
                      "text, csv (one document per row) or auto (csv for .csv/.tsv names).",
                      flag_values=fv)
    flags.DEFINE_string("csv_column", _D.csv_column,
                        "CSV column to read: a header name or 0-based index (default: first).",
                        flag_values=fv)
    flags.DEFINE_enum("level", _D.level, cfg.LEVELS,
                      "Token unit: char (Unicode code points) or word (NLTK tokens).",
                      flag_values=fv)
    flags.DEFINE_boolean("lowercase", _D.lowercase,
                         "Lowercase the text (default: on at word level, off at char level).",
                         flag_values=fv)
    flags.DEFINE_integer("vocab_size", _D.vocab_size,
                         "Word level: keep this many most frequent tokens (special tokens "
                         "included); the rest become UNKNOWN_TOKEN.", flag_values=fv)
    flags.DEFINE_string("encoding", _D.encoding, "Text encoding of --data_path.", flag_values=fv)
    flags.DEFINE_enum("encoding_errors", _D.encoding_errors, cfg.ENCODING_ERRORS,
                      "Bytes that do not decode: strict (stop with an error), replace (with "
                      "U+FFFD) or ignore (drop them).", flag_values=fv)
    flags.DEFINE_float("val_fraction", _D.val_fraction,
                       "Fraction of the corpus (its tail) held out for validation.",
                       flag_values=fv)
    flags.DEFINE_float("test_fraction", _D.test_fraction,
                       "Fraction held out at the very end for testing (never trained on).",
                       flag_values=fv)


def define_prepare_flags(fv=FLAGS):
    _define_corpus_flags(fv)
    flags.DEFINE_string("out", _R.out, "Directory to write the prepared data to (required).",
                        flag_values=fv)
    flags.DEFINE_integer("num_workers", _R.num_workers,
                         "Word level: processes that tokenize in parallel (0: one per CPU "
                         "core); the result is the same for any number.", flag_values=fv)
    flags.DEFINE_boolean("overwrite", _R.overwrite, "Replace a non-empty --out (the old one is "
                         "renamed, never deleted).", flag_values=fv)


def define_model_flags(fv=FLAGS):
    flags.DEFINE_enum("backend", _M.backend, cfg.BACKENDS,
                      "keras: Keras RNN layers; manual: explicit weights and time loop.",
                      flag_values=fv)
    flags.DEFINE_enum("model", _M.model, cfg.MODELS,
                      f"Recurrent cell: {', '.join(cfg.MODELS)} (tfcharrnn/models/cells/).",
                      flag_values=fv)
    flags.DEFINE_integer("num_layers", _M.num_layers, "Stacked recurrent layers.",
                         flag_values=fv)
    flags.DEFINE_integer("hidden_size", _M.hidden_size, "Units per recurrent layer.",
                         flag_values=fv)
    flags.DEFINE_integer("embedding_size", _M.embedding_size,
                         "Token embedding width (0 = one-hot input).", flag_values=fv)
    flags.DEFINE_float("dropout", _M.dropout,
                       "Dropout between layers and before the softmax, in [0, 1).",
                       flag_values=fv)
    flags.DEFINE_float("weight_dropout", _M.weight_dropout,
                       "DropConnect of the recurrent (hidden-to-hidden) weights in training, "
                       "one mask per window (AWD-LSTM's WeightDrop), in [0, 1).",
                       flag_values=fv)
    flags.DEFINE_bool("locked_dropout", _M.locked_dropout,
                      "--dropout draws one mask per stream and keeps it for every step of the "
                      "window (AWD-LSTM's locked dropout) instead of a new mask at every step.",
                      flag_values=fv)
    flags.DEFINE_enum("precision", _M.precision, cfg.PRECISIONS,
                      "Matrix products in float32, or in bfloat16 / float16 with everything "
                      "else float32 (mixed_float16 adds loss scaling; for GPUs); auto: "
                      "mixed_bfloat16 on CPUs with amx_bf16 or avx512_bf16 and GPUs from "
                      "compute capability 8.0, mixed_float16 on 7.x, else float32.",
                      flag_values=fv)


def define_distribute_flags(fv=FLAGS):
    """Names follow the TensorFlow Model Garden's (official/utils/flags)."""
    flags.DEFINE_enum("distribution_strategy", _X.distribution_strategy, cfg.STRATEGIES,
                      "off: one device; mirrored: the local GPUs (or --num_replicas logical "
                      "CPU devices); multi_worker_mirrored: several machines, the cluster from "
                      "TF_CONFIG (every worker runs the same command).", flag_values=fv)
    flags.DEFINE_integer("num_replicas", _X.num_replicas,
                         "mirrored: use the first N GPUs, or N logical CPU devices on a machine "
                         "without a GPU (0 = every GPU).", flag_values=fv)
    flags.DEFINE_float("startup_timeout", _X.startup_timeout,
                       "multi_worker_mirrored: seconds to wait for every worker to come up "
                       "before stopping with an error.", flag_values=fv)


def define_train_flags(fv=FLAGS):
    flags.DEFINE_string("preset", _T.preset, presets.help_text(), flag_values=fv)
    define_data_flags(fv)
    define_model_flags(fv)
    define_distribute_flags(fv)
    flags.DEFINE_string("checkpoint_dir", "",
                        "Run directory for checkpoints, config.json and vocab.json "
                        "(default: checkpoints/<model>). Training again resumes it.",
                        flag_values=fv)
    flags.DEFINE_string("logdir", _T.logdir,
                        "TensorBoard directory (default: <checkpoint_dir>/logs).", flag_values=fv)
    flags.DEFINE_float("learning_rate", _T.learning_rate, "Adam learning rate.", flag_values=fv)
    flags.DEFINE_float("decay_rate", _T.decay_rate,
                       "Learning-rate multiplier per completed epoch.", flag_values=fv)
    flags.DEFINE_enum("lr_schedule", _T.lr_schedule, cfg.LR_SCHEDULES,
                      "epoch_decay: times --decay_rate per epoch; cosine: down to "
                      "--min_lr_ratio x the rate along half a cosine over the whole run (its "
                      "steps, or the --max_minutes budget); linear: the same along a straight "
                      "line.", flag_values=fv)
    flags.DEFINE_float("min_lr_ratio", _T.min_lr_ratio,
                       "cosine, linear: the final learning rate as a fraction of --learning_rate.",
                       flag_values=fv)
    flags.DEFINE_integer("warmup_steps", _T.warmup_steps,
                         "Raise the learning rate linearly over this many first steps "
                         "(0 = no warm-up).", flag_values=fv)
    flags.DEFINE_float("weight_decay", _T.weight_decay,
                       "Decoupled weight decay (AdamW) of the weight matrices, not the biases "
                       "(0 = none).", flag_values=fv)
    flags.DEFINE_float("ema_decay", _T.ema_decay,
                       "Validate, pick the best checkpoint and sample with an exponential "
                       "moving average of the weights with this decay, e.g. 0.999 (0 = off; "
                       "training runs on the weights themselves).", flag_values=fv)
    flags.DEFINE_float("grad_clip", _T.grad_clip,
                       "Clip gradients to this global norm (0 = no clipping).", flag_values=fv)
    flags.DEFINE_integer("num_epochs", _T.num_epochs, "Passes over the training split.",
                         flag_values=fv)
    flags.DEFINE_integer("max_steps", _T.max_steps,
                         "Stop after this many steps in total (0 = no limit).", flag_values=fv)
    flags.DEFINE_float("max_minutes", _T.max_minutes,
                       "Stop after this many minutes of wall time in this invocation, then "
                       "validate and save as at --max_steps (0 = no limit).", flag_values=fv)
    flags.DEFINE_integer("eval_every", _T.eval_every,
                         "Validate (and log a text sample) every this many steps.",
                         flag_values=fv)
    flags.DEFINE_integer("save_every", _T.save_every,
                         "Checkpoint every this many steps (0 = at each evaluation).",
                         flag_values=fv)
    flags.DEFINE_integer("keep_checkpoints", _T.keep_checkpoints,
                         "Latest checkpoints to keep (the best one is kept separately).",
                         flag_values=fv)
    flags.DEFINE_integer("sample_length", _T.sample_length,
                         "Characters in the text sample logged to TensorBoard.", flag_values=fv)
    flags.DEFINE_integer("seed", _T.seed, "Random seed (weights, dropout, samples).",
                         flag_values=fv)
    flags.DEFINE_boolean("overwrite", False,
                         "Start over in a checkpoint_dir that holds another run; the old run "
                         "is renamed, never deleted.", flag_values=fv)


def _define_run_flags(fv, defaults, weights_help: str):
    """--checkpoint_dir and --checkpoint: the run a command restores, and which weights."""
    flags.DEFINE_string("checkpoint_dir", defaults.checkpoint_dir,
                        "Run directory written by train.", flag_values=fv)
    flags.DEFINE_enum("checkpoint", defaults.checkpoint, cfg.CHECKPOINT_CHOICES, weights_help,
                      flag_values=fv)


def _define_precision_override(fv, defaults):
    flags.DEFINE_enum("precision", defaults.precision, ("",) + cfg.PRECISIONS,
                      "Precision of the matrix products (default: the run's).", flag_values=fv)


def define_sample_flags(fv=FLAGS):
    _define_run_flags(fv, _S, "Weights to use: best (lowest validation loss) or latest.")
    flags.DEFINE_string("prime", _S.prime, "Text to start from (warms up the state).",
                        flag_values=fv)
    flags.DEFINE_integer("length", _S.length, "Characters to generate per sample (char level).",
                         flag_values=fv)
    flags.DEFINE_integer("min_length", _S.min_length,
                         "Word level: fewest words per sentence (shorter ones are drawn again).",
                         flag_values=fv)
    flags.DEFINE_integer("max_length", _S.max_length,
                         "Word level: most tokens drawn for one sentence.", flag_values=fv)
    flags.DEFINE_float("temperature", _S.temperature,
                       "Softmax temperature (<1 more conservative, >1 more surprising).",
                       flag_values=fv)
    flags.DEFINE_enum("sampling", _S.sampling, cfg.SAMPLING_METHODS,
                      "sample: from the softmax; argmax: most likely; top_k: among top_k; "
                      "top_p: within the nucleus of mass --top_p; beam: beam search.",
                      flag_values=fv)
    flags.DEFINE_integer("top_k", _S.top_k, "Candidates kept by --sampling=top_k.",
                         flag_values=fv)
    flags.DEFINE_float("top_p", _S.top_p, "--sampling=top_p: keep the fewest most likely "
                       "tokens whose probability adds up to this.", flag_values=fv)
    flags.DEFINE_integer("beam_width", _S.beam_width, "Beams kept by --sampling=beam.",
                         flag_values=fv)
    flags.DEFINE_integer("num_samples", _S.num_samples,
                         "Independent samples (word level: sentences, one per line; beam: "
                         "the best beams).", flag_values=fv)
    flags.DEFINE_string("stop", _S.stop, "Char level: end each sample at the first occurrence "
                        "of this text (e.g. a blank line: $'\\n\\n').", flag_values=fv)
    flags.DEFINE_boolean("interactive", _S.interactive, "Read a prime per line from the "
                         "terminal and continue it, keeping the state until /reset.",
                         flag_values=fv)
    flags.DEFINE_integer("seed", _S.seed, "Random seed: same seed, same text.", flag_values=fv)
    _define_precision_override(fv, _S)


def define_eval_flags(fv=FLAGS):
    _define_run_flags(fv, _E, "Weights to use: best or latest.")
    flags.DEFINE_string("data_path", _E.data_path, "Text file to evaluate on, or a prepared "
                        "data directory (python -m tfcharrnn.prepare; all of --split) "
                        "(required).", flag_values=fv)
    flags.DEFINE_enum("split", _E.split, ["train", "val", "test"],
                      "Of a prepared data directory: the split to evaluate.", flag_values=fv)
    flags.DEFINE_integer("window", _E.window,
                         "Tokens per forward call (the state carries across; speed only).",
                         flag_values=fv)
    _define_precision_override(fv, _E)


def define_score_flags(fv=FLAGS):
    _define_run_flags(fv, _C, "Weights to use: best or latest.")
    flags.DEFINE_string("input", _C.input, "File of texts to score (default: standard input).",
                        flag_values=fv)
    flags.DEFINE_enum("unit", _C.unit, cfg.SCORE_UNITS,
                      "Score each line, or each sentence (split by the run's Punkt model).",
                      flag_values=fv)
    flags.DEFINE_boolean("sort", _C.sort, "Rank from most to least probable.", flag_values=fv)
    flags.DEFINE_integer("window", _C.window, "Tokens per forward call (speed only).",
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", _C.batch_size,
                         "Texts scored at once (speed and memory only).", flag_values=fv)
    _define_precision_override(fv, _C)


def define_export_flags(fv=FLAGS):
    _define_run_flags(fv, _X2, "Weights to export: best or latest.")
    flags.DEFINE_string("export_dir", _X2.export_dir,
                        "Directory to write the export to (required).", flag_values=fv)
    flags.DEFINE_boolean("overwrite", _X2.overwrite, "Replace a non-empty --export_dir (the "
                         "old one is renamed, never deleted).", flag_values=fv)
    flags.DEFINE_enum("format", _X2.format, list(cfg.EXPORT_FORMATS),
                      "saved_model: a TensorFlow SavedModel; web: a static folder (model.json, "
                      "weight shards, the page and its JavaScript runtime) that runs the model "
                      "in a browser.", flag_values=fv)
    flags.DEFINE_enum("web_weights", _X2.web_weights, list(cfg.WEB_WEIGHT_DTYPES),
                      "--format=web: the weight shards' number type (float16 halves the "
                      "download; the runtime computes in float64 either way).", flag_values=fv)


def define_serve_flags(fv=FLAGS):
    _define_run_flags(fv, _W, "Weights to serve: best or latest.")
    flags.DEFINE_string("host", _W.host, "Address to listen on (the default, loopback, serves "
                        "this machine only; 0.0.0.0 every interface).", flag_values=fv)
    flags.DEFINE_integer("port", _W.port, "TCP port (0: any free port; the URL is printed).",
                         flag_values=fv)
    flags.DEFINE_integer("max_length", _W.max_length,
                         "Most tokens a request may generate per sample, or put in a prime.",
                         flag_values=fv)
    flags.DEFINE_integer("max_batch", _W.max_batch,
                         "Samples generated together in one lane, across requests (more wait "
                         "their turn); also the most num_samples of one request.",
                         flag_values=fv)
    flags.DEFINE_integer("lanes", _W.lanes,
                         "Batches drawn side by side, each by its own thread (0: one per CPU "
                         "core).", flag_values=fv)
    flags.DEFINE_integer("max_texts", _W.max_texts, "Most texts in one score request.",
                         flag_values=fv)
    flags.DEFINE_integer("max_body_kb", _W.max_body_kb, "Largest request body, in KiB.",
                         flag_values=fv)
    _define_precision_override(fv, _W)


def define_plot_flags(fv=FLAGS):
    flags.DEFINE_string("logdir", _P.logdir,
                        "A run's TensorBoard logs, or a folder of runs (one curve per run).",
                        flag_values=fv)
    flags.DEFINE_string("out", _P.out, "PNG file to write.", flag_values=fv)
    flags.DEFINE_string("tag", _P.tag, "TensorBoard scalar to draw against minutes.",
                        flag_values=fv)


def _values(fv, dataclass):
    import dataclasses
    return {f.name: fv[f.name].value for f in dataclasses.fields(dataclass) if f.name in fv}


def run_config(fv=FLAGS) -> cfg.RunConfig:
    train = _values(fv, _T)
    train["checkpoint_dir"] = fv.checkpoint_dir or f"checkpoints/{fv.model}"
    return cfg.RunConfig(data=_D(**_values(fv, _D)), model=_M(**_values(fv, _M)),
                         train=_T(**train), distribute=_X(**_values(fv, _X)))


def sample_config(fv=FLAGS) -> cfg.SampleConfig:
    return _S(**_values(fv, _S))


def eval_config(fv=FLAGS) -> cfg.EvalConfig:
    return _E(**_values(fv, _E))


def score_config(fv=FLAGS) -> cfg.ScoreConfig:
    return _C(**_values(fv, _C))


def export_config(fv=FLAGS) -> cfg.ExportConfig:
    return _X2(**_values(fv, _X2))


def prepare_config(fv=FLAGS) -> cfg.PrepareConfig:
    return _R(data=_D(**_values(fv, _D)), **_values(fv, _R))


def serve_config(fv=FLAGS) -> cfg.ServeConfig:
    return _W(**_values(fv, _W))


def plot_config(fv=FLAGS) -> cfg.PlotConfig:
    return _P(**_values(fv, _P))
