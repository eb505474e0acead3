"""Generated input on every path by which input enters (Hypothesis), in this process.

The property everywhere: the call succeeds, or fails with the project's own `UsageError` or
`RunError` (one line for the user), never anything else; the server answers below 500.
The examples come from a fixed seed (the `tfcharrnn` profile, tests/conftest.py), so CI is
repeatable; `python -m pytest tests/test_fuzz.py --hypothesis-profile=long` runs ten times as
many, from a random seed.
"""

import csv
import io
import json
import os
import tempfile

import pytest
from absl import flags as absl_flags
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import flags as tfcharrnn_flags
from tfcharrnn import checkpoints, config as cfg, dataset
from tfcharrnn.errors import RunError, UsageError
from tfcharrnn.vocab import CharVocab

QUIET = dict(log=lambda message: None)


def holds(call):
    """Runs call(); the project's own errors are answers, anything else fails the test."""
    try:
        call()
    except (UsageError, RunError):
        pass


def in_folder(files: dict, call):
    """Writes {name: bytes} into a fresh folder and runs call(folder)."""
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        return call(folder)


# ---- corpora ----

def read_and_encode(path, **settings_):
    config = cfg.DataConfig(data_path=path, **settings_)
    documents = dataset.read_corpus(config)
    dataset.build_vocab_and_encode(config, documents, **QUIET)


@given(data=st.binary(max_size=3000),
       name=st.sampled_from(["corpus.txt", "corpus.csv", "corpus"]),
       encoding=st.sampled_from(["utf-8", "latin-1", "utf-16", "ascii", "cp1252", "utf-8-sig",
                                 "no-such-codec"]),
       errors=st.sampled_from(cfg.ENCODING_ERRORS),
       level=st.sampled_from(cfg.LEVELS))
def test_any_bytes_as_a_corpus(data, name, encoding, errors, level):
    in_folder({name: data}, lambda d: holds(lambda: read_and_encode(
        os.path.join(d, name), encoding=encoding, encoding_errors=errors, level=level)))


@given(text=st.text(max_size=2000),
       encoding=st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "latin-1",
                                 "cp1252", "shift_jis"]),
       read_as=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
       level=st.sampled_from(cfg.LEVELS))
def test_text_in_any_encoding_read_in_any_other(text, encoding, read_as, level):
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode(encoding, errors="replace")
    in_folder({"corpus.txt": data}, lambda d: holds(lambda: read_and_encode(
        os.path.join(d, "corpus.txt"), encoding=read_as, level=level)))


FIELD = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@st.composite
def csv_files(draw):
    """CSV bytes: random rows and delimiters, quoting, a BOM, CRLF, unbalanced quotes,
    fields past the csv module's size limit."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|", " "]))
    rows = draw(st.lists(st.lists(FIELD, min_size=1, max_size=5), max_size=30))
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, quoting=draw(st.sampled_from(
        [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))).writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()):
        text = text.replace("\r\n", "\n")
    if draw(st.booleans()):                       # an unbalanced quote somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + '"' + text[at:]
    if draw(st.integers(0, 9)) == 0:              # a field larger than csv's 131,072 limit
        text += '"' + "x" * 140_000 + '"\n'
    data = text.encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if draw(st.booleans()) else data


@given(data=csv_files(),
       column=st.one_of(st.just(""), FIELD, st.sampled_from(["0", "1", "7", "-1", "²", "١",
                                                             "1.5", " 0", "comment"])),
       level=st.sampled_from(cfg.LEVELS))
def test_any_csv_and_any_column(data, column, level):
    in_folder({"c.csv": data}, lambda d: holds(lambda: read_and_encode(
        os.path.join(d, "c.csv"), csv_column=column, level=level)))


# ---- the run directory's files ----

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
VALID_CONFIG = cfg.RunConfig(data=cfg.DataConfig(), model=cfg.ModelConfig(),
                             train=cfg.TrainConfig()).to_dict()
VALID_VOCAB = {"level": "char", "tokens": list("\nabc !"), "lowercase": False}


@st.composite
def mutated(draw, valid):
    """A valid JSON object with one of its values (at any depth) replaced or removed, or a
    key added."""
    value = json.loads(json.dumps(valid))
    node = value
    while isinstance(node, dict) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node)))
        if not isinstance(node[key], dict):
            break
        node = node[key]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            node[key] = draw(JSON)
        elif action == "remove":
            del node[key]
        else:
            node[draw(st.text(max_size=8))] = draw(JSON)
    return value


def run_file_bytes(valid):
    as_bytes = lambda v: json.dumps(v).encode("utf-8")  # noqa: E731
    return st.one_of(
        JSON.map(as_bytes),
        mutated(valid).map(as_bytes),
        st.tuples(mutated(valid).map(as_bytes), st.floats(0, 1)).map(
            lambda pair: pair[0][:int(len(pair[0]) * pair[1])]),           # truncated
        st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),        # deeply nested
        st.binary(max_size=200))


@given(config=run_file_bytes(VALID_CONFIG), vocab=run_file_bytes(VALID_VOCAB))
def test_any_config_and_vocab_files(config, vocab):
    def load(folder):
        holds(lambda: checkpoints.load_run_config(folder))
        holds(lambda: checkpoints.load_vocab(folder))
    in_folder({checkpoints.CONFIG_FILE: config, checkpoints.VOCAB_FILE: vocab}, load)


# ---- the vocabularies ----

TEXT = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=300)


@given(text=TEXT, extra=st.sampled_from(["", "\U0001F600\U00010348", "e\u0301\u0327",
                                         "\u200d\u0000"]))
def test_a_character_vocabulary_decodes_what_it_encodes(text, extra):
    text += extra                       # astral characters, combining marks, joiners
    vocab = CharVocab.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text
    lower = CharVocab.from_text(text, lowercase=True)
    assert lower.decode(lower.encode(text)) == text.lower()
    round_trip = CharVocab.from_dict(json.loads(vocab.to_json()))    # as vocab.json
    assert round_trip.encode(text).tolist() == vocab.encode(text).tolist()


# ---- flag values of every command ----

COMMANDS = {
    "train": (tfcharrnn_flags.define_train_flags, tfcharrnn_flags.run_config),
    "sample": (tfcharrnn_flags.define_sample_flags, tfcharrnn_flags.sample_config),
    "evaluate": (tfcharrnn_flags.define_eval_flags, tfcharrnn_flags.eval_config),
    "score": (tfcharrnn_flags.define_score_flags, tfcharrnn_flags.score_config),
    "export": (tfcharrnn_flags.define_export_flags, tfcharrnn_flags.export_config),
    "prepare": (tfcharrnn_flags.define_prepare_flags, tfcharrnn_flags.prepare_config),
    "serve": (tfcharrnn_flags.define_serve_flags, tfcharrnn_flags.serve_config),
    "plot": (tfcharrnn_flags.define_plot_flags, tfcharrnn_flags.plot_config),
}
ODD_VALUES = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "", "-1", "0", "1", "1e308", "-1e308",
                     "99999999999999999999", "-99999999999999999999", "2147483648", "1.5",
                     "true", "false", "²", " 3", "0x10", "None", "lstm", "keras", "char"]),
    st.integers(-2 ** 70, 2 ** 70).map(str), st.floats().map(str), st.text(max_size=12))


def flag_values(command):
    """1 to 4 (flag, value) pairs of the command's flags (train's --preset reads a file: its
    own test is in test_presets.py)."""
    define, _ = COMMANDS[command]
    fv = absl_flags.FlagValues()
    define(fv)
    names = sorted(name for name in fv if name != "preset")
    return st.lists(st.tuples(st.sampled_from(names), ODD_VALUES), min_size=1, max_size=4)


def parse(command, pairs):
    """The command's flags parsed into its config, as the command does."""
    define, get = COMMANDS[command]
    fv = absl_flags.FlagValues()
    define(fv)
    argv = [command] + [f"--{name}={value}" for name, value in pairs]
    try:
        fv(argv)
    except absl_flags.Error:
        return None                     # the command prints it as one line (cli._parse_flags)
    return get(fv)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_flag_values_of_every_command(command, data):
    pairs = data.draw(flag_values(command))
    result = [None]
    holds(lambda: result.__setitem__(0, parse(command, pairs)))
    config = result[0]
    if isinstance(config, cfg.SampleConfig):   # what a sample command may ask for is bounded
        assert config.num_samples <= cfg.MAX_SAMPLES
        assert config.sampling != "beam" or config.beam_width <= cfg.MAX_BEAM_WIDTH


# ---- the HTTP API ----

@pytest.fixture(scope="module")
def small_server(served_run):
    from test_serve import Served
    with Served(served_run.train.checkpoint_dir, max_length=40, max_batch=4, max_texts=4,
                max_body_kb=4) as server:
        yield server


FIELDS = ["prime", "length", "temperature", "sampling", "top_k", "top_p", "seed", "stop",
          "num_samples", "min_length", "max_length", "beam_width", "texts", "per_token",
          "unit", "sort"]
BODIES = st.one_of(
    JSON,
    st.dictionaries(st.sampled_from(FIELDS), JSON | ODD_VALUES, max_size=5),
    st.dictionaries(st.sampled_from(FIELDS), st.integers(-5, 60) | st.sampled_from(
        ["sample", "argmax", "top_k", "top_p", "beam", "line", "sentence"]) | st.text(max_size=6)
        | st.lists(st.text(max_size=20), max_size=3), max_size=6))


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=BODIES, path=st.sampled_from(["/v1/generate", "/v1/generate/stream",
                                          "/v1/score"]))
@example(body={"prime": "Fi", "length": 5, "num_samples": 2}, path="/v1/generate")
@example(body={"texts": ["To be", "or not"], "per_token": True}, path="/v1/score")
def test_any_json_body_gets_an_answer_below_500(small_server, body, path):
    response = small_server.client.post(path, content=json.dumps(body),
                                        headers={"content-type": "application/json"})
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error and "\n" not in error
