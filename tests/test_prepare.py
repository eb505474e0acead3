"""`python -m tfcharrnn.prepare` and training from prepared data: the ids are the in-memory
path's, whatever the sources' form (folder, glob, compressed, CSV), the number of workers or
the size of the pieces read; damaged files are one-line errors; nothing half-written is left.
"""

import bz2
import dataclasses
import gzip
import json
import os

import numpy as np
import pytest

from conftest import run_command, tiny_config, write_comments_csv

from tfcharrnn import corpus, dataset, train_lib
from tfcharrnn.config import DataConfig
from tfcharrnn.errors import UsageError
from tfcharrnn.prepare import prepare_lib, prepared, sources, tokenfile
from tfcharrnn.vocab import CharVocab, vocab_from_dict

QUIET = dict(log=lambda m: None)


def in_memory(dc):
    vocab, ids = dataset.build_vocab_and_encode(dc, dataset.read_corpus(dc), **QUIET)
    return vocab, corpus.split(ids, dc.val_fraction, dc.test_fraction)


def read_prepared(directory):
    with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as f:
        vocab = vocab_from_dict(json.load(f))
    parts = []
    for name in ("train", "val", "test"):
        path = os.path.join(directory, f"{name}.bin")
        parts.append(np.asarray(tokenfile.read(path)) if os.path.exists(path)
                     else np.zeros(0, np.int64))
    return vocab, parts


def assert_same(dc, directory):
    vocab, parts = in_memory(dc)
    prepared_vocab, prepared_parts = read_prepared(directory)
    assert prepared_vocab == vocab
    for mine, theirs in zip(prepared_parts, parts):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("level", ["char", "word"])
def test_prepared_ids_are_the_in_memory_ones(tmp_path, corpus_path, monkeypatch, level):
    # small pieces and blocks: the cuts fall inside words, lines and CSV rows
    monkeypatch.setattr(sources, "PIECE_BYTES", 997)
    monkeypatch.setattr("tfcharrnn.tokenization.BLOCK_CHARS", 3001)
    monkeypatch.setattr(prepare_lib, "WORK_CHARS", 5000)
    text = DataConfig(data_path=str(corpus_path), level=level, test_fraction=0.05)
    prepare_lib.prepare(text, str(tmp_path / "text"), workers=1, **QUIET)
    csv = write_comments_csv(tmp_path / "comments.csv")
    rows = DataConfig(data_path=str(csv), csv_column="comment", level=level, vocab_size=25)
    prepare_lib.prepare(rows, str(tmp_path / "csv"), workers=1, **QUIET)
    assert_same(text, tmp_path / "text")         # (the in-memory path cuts the same blocks)
    assert_same(rows, tmp_path / "csv")
    meta = json.loads((tmp_path / "text" / "meta.json").read_text())
    assert meta["counts"]["train"] + meta["counts"]["val"] + meta["counts"]["test"] == \
        meta["counts"]["tokens"]
    assert meta["dtype"] == ("uint8" if level == "char" else "uint16")


def test_two_word_tokenizing_workers_give_what_one_gives(tmp_path, corpus_path, monkeypatch):
    monkeypatch.setattr(prepare_lib, "WORK_CHARS", 2000)      # several tasks per worker
    dc = DataConfig(data_path=str(corpus_path), level="word", vocab_size=300)
    prepare_lib.prepare(dc, str(tmp_path / "one"), workers=1, **QUIET)
    prepare_lib.prepare(dc, str(tmp_path / "two"), workers=2, **QUIET)
    one, two = read_prepared(tmp_path / "one"), read_prepared(tmp_path / "two")
    assert one[0] == two[0]
    for a, b in zip(one[1], two[1]):
        np.testing.assert_array_equal(a, b)


def test_a_folder_is_its_text_files_in_order_compressed_or_not(tmp_path):
    folder = tmp_path / "books"
    (folder / "b").mkdir(parents=True)
    texts = {"a.txt": "First book.\nIt ends.", "b/c.txt.gz": "Second, gzipped.",
             "b/d.md.bz2": "Third: bz2!", "e": "Fourth has no suffix."}
    (folder / "a.txt").write_text(texts["a.txt"])
    (folder / "b" / "c.txt.gz").write_bytes(gzip.compress(texts["b/c.txt.gz"].encode()))
    (folder / "b" / "d.md.bz2").write_bytes(bz2.compress(texts["b/d.md.bz2"].encode()))
    (folder / "e").write_text(texts["e"])
    (folder / ".hidden.txt").write_text("never read")
    (folder / "picture.png").write_bytes(b"\x89PNG\x00\x00")
    logged = []
    dc = DataConfig(data_path=str(folder), val_fraction=0.2)
    prepare_lib.prepare(dc, str(tmp_path / "out"), log=logged.append)
    assert any("skipped 1 file" in m and "picture.png" in m for m in logged)
    joined = "\n".join(texts[k] for k in ["a.txt", "b/c.txt.gz", "b/d.md.bz2", "e"])
    vocab = CharVocab.from_text(joined)
    ids = vocab.encode(joined)
    expected = corpus.split(ids, 0.2)
    got_vocab, got = read_prepared(tmp_path / "out")
    assert got_vocab == vocab
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(expected))
    np.testing.assert_array_equal(got[1], expected[1])
    # a glob of the same files in another order: the glob's sorted order
    prepare_lib.prepare(DataConfig(data_path=str(folder / "b" / "*")), str(tmp_path / "glob"),
                        **QUIET)
    _, globbed = read_prepared(tmp_path / "glob")
    assert sum(len(p) for p in globbed) == len(texts["b/c.txt.gz"]) + 1 + len(texts["b/d.md.bz2"])


def test_csv_rows_stream_as_they_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "PIECE_BYTES", 7)
    path = tmp_path / "quoted.csv"
    path.write_bytes(b'id,text\r\n1,"a, b"\r\n2,"line one\r\nline two"\r\n3,\r\n4,plain\r'
                     b'\n5,"""quoted"""\n')
    whole = corpus.read_documents(str(path), csv_column="text")
    streamed = [next(d) for d in sources.documents([str(path)], csv_column="text")]
    assert streamed == whole == ["a, b", "line one\r\nline two", "plain", '"quoted"']


# ---- training from prepared data ----

def test_training_batches_from_a_prepared_directory_are_the_in_memory_ones(tmp_path,
                                                                           corpus_path):
    out = tmp_path / "prepared"
    prepare_lib.prepare(DataConfig(data_path=str(corpus_path)), str(out), **QUIET)
    base = tiny_config(tmp_path, corpus_path)
    from_dir = dataclasses.replace(base, data=prepared.adopt(dataclasses.replace(
        base.data, data_path=str(out))))
    memory = train_lib.prepare_data(base, prepare=False, **QUIET)
    mapped = train_lib.prepare_data(from_dir, **QUIET)
    assert mapped.vocab == memory.vocab and len(mapped.train) == len(memory.train)
    assert isinstance(mapped.train._inputs.base, np.memmap) or \
        isinstance(mapped.train._inputs, np.memmap)
    for i in (0, 5, len(memory.train) - 1):
        for a, b in zip(mapped.train[i], memory.train[i]):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mapped.val[0][0], memory.val[0][0])
    # --val_tokens: validation reads the split's head
    short = dataclasses.replace(base, data=dataclasses.replace(base.data, val_tokens=200))
    assert len(train_lib.prepare_data(short, **QUIET).val) == 200 // (4 * 16)


def test_the_run_prepares_its_corpus_once_and_checks_it_on_resume(tmp_path, corpus_path):
    source = tmp_path / "corpus.txt"
    source.write_text(corpus_path.read_text())
    dc = DataConfig(data_path=str(source))
    run_dir = str(tmp_path / "run")
    logged = []
    directory = prepared.ensure(dc, run_dir, log=logged.append)
    assert directory == os.path.join(run_dir, "data") and prepared.is_prepared(directory)
    before = os.path.getmtime(os.path.join(directory, "meta.json"))
    os.utime(source, (1, 1))                       # touched, not changed: reused
    assert prepared.ensure(dc, run_dir, log=logged.append) == directory
    assert os.path.getmtime(os.path.join(directory, "meta.json")) == before   # not again
    source.write_text(corpus_path.read_text() + "more")
    with pytest.raises(UsageError, match=r"training data changed.*corpus\.txt changed size"):
        prepared.ensure(dc, run_dir, **QUIET)
    with pytest.raises(UsageError, match="other data settings"):
        source.write_text(corpus_path.read_text())
        os.utime(source, (1, 1))
        prepared.ensure(dataclasses.replace(dc, val_fraction=0.2), run_dir, **QUIET)


# ---- damage ----

@pytest.fixture
def good_file(tmp_path):
    writer = tokenfile.Writer(str(tmp_path / "ids.bin"), np.uint16)
    writer.append(np.arange(100))
    writer.close()
    return tmp_path / "ids.bin"


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-3], "header counts 100 ids"),
    (lambda b: b + b"\0\0", "header counts 100 ids"),
    (lambda b: b"NOTMINE!" + b[8:], "not a tfcharrnn token file"),
    (lambda b: b[:8] + (7).to_bytes(4, "little") + b[12:], "version 7"),
    (lambda b: b[:12] + (3).to_bytes(4, "little") + b[16:], "ids of 3 bytes"),
    (lambda b: b[:10], "not a tfcharrnn token file"),
])
def test_a_damaged_token_file_is_one_line(good_file, damage, message):
    np.testing.assert_array_equal(tokenfile.read(str(good_file)), np.arange(100))
    good_file.write_bytes(damage(good_file.read_bytes()))
    with pytest.raises(UsageError, match=message) as error:
        tokenfile.read(str(good_file))
    assert "\n" not in str(error.value) and "prepare the data again" in str(error.value)


def test_a_failed_prepare_leaves_nothing_behind(tmp_path, corpus_path, monkeypatch):
    def full(self, ids):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(tokenfile.Writer, "append", full)
    with pytest.raises(UsageError, match="No space left on device.*free some space or pass "
                                         "another --out"):
        prepare_lib.prepare(DataConfig(data_path=str(corpus_path)), str(tmp_path / "out"),
                            **QUIET)
    assert os.listdir(tmp_path) == []
    (tmp_path / "blocker").write_text("x")              # a file where a folder would go
    with pytest.raises(UsageError, match=r"cannot write --out .*blocker/data \(a file stands "
                                         r"where a folder would go\); pass a path you can"):
        prepare_lib.prepare(DataConfig(data_path=str(corpus_path)),
                            str(tmp_path / "blocker" / "data"), **QUIET)
    assert os.listdir(tmp_path) == ["blocker"]


def test_a_directory_without_vocab_or_meta_is_one_line(tmp_path, corpus_path):
    out = tmp_path / "prepared"
    prepare_lib.prepare(DataConfig(data_path=str(corpus_path)), str(out), **QUIET)
    os.remove(out / "vocab.json")
    with pytest.raises(UsageError, match="has no vocab.json"):
        prepared.load(str(out))
    (out / "meta.json").write_text("[" * 100000)
    with pytest.raises(UsageError, match="meta.json is missing or damaged"):
        prepared.load(str(out))


def test_prepare_command_prints_its_result_and_refuses_bad_input(tmp_path, corpus_path):
    result = run_command("tfcharrnn.prepare", f"--data_path={corpus_path}",
                         f"--out={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    assert "prepared 1 file(s)" in result.stdout and "--data_path=" in result.stdout
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.txt.gz").write_bytes(b"not gzip at all")
    for args, message in [((f"--data_path={tmp_path / 'empty'}", f"--out={tmp_path / 'new'}"),
                           "holds no text files"),
                          ((f"--data_path={tmp_path / 'bad.txt.gz'}", f"--out={tmp_path / 'new'}"),
                           "cannot read"),
                          ((f"--data_path={corpus_path}", f"--out={tmp_path / 'out'}"),
                           "is not empty")]:
        result = run_command("tfcharrnn.prepare", *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["bad.txt.gz", "empty", "out"]


def test_evaluate_reads_a_whole_prepared_split(served_run):
    """The run prepared its corpus into RUN/data; evaluate scores a split of it, all of it,
    as it scores the same ids read from the text."""
    import io
    from tfcharrnn import checkpoints, evaluate_lib
    from tfcharrnn.config import EvalConfig
    from tfcharrnn.evaluation import StreamScorer
    run_dir = served_run.train.checkpoint_dir
    data_dir = os.path.join(run_dir, "data")
    assert prepared.is_prepared(data_dir)
    result = evaluate_lib.evaluate(EvalConfig(checkpoint_dir=run_dir, data_path=data_dir),
                                   out=io.StringIO())
    _, vocab, model = checkpoints.restore_model(run_dir)
    _, (_, val, _) = in_memory(served_run.data)
    expected = StreamScorer(model).score(val.astype(np.int32))
    assert result["tokens"] == len(val) - 1
    assert result["loss_nats_per_token"] == pytest.approx(expected["loss_nats_per_token"],
                                                          abs=1e-6)
    with pytest.raises(UsageError, match="has no test split"):
        evaluate_lib.evaluate(EvalConfig(checkpoint_dir=run_dir, data_path=data_dir,
                                         split="test"), out=io.StringIO())
