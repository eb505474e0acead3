"""`export --format=web`: the folder, its JavaScript runtime against Python (in Node, over
HTTP from a static server, as in a browser), and the page in headless Chromium.

Python's numbers come from the same code the commands run: `score_lib.score_texts` (what
`python -m tfcharrnn.score` prints), `inference.make_step` (the sampler's step) and
`sample_lib.sample` (what `python -m tfcharrnn.sample` prints)."""

import io
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from browser import StaticServer, wait_for
from conftest import ROOT

from tfcharrnn import checkpoints, sample_lib, score_lib
from tfcharrnn.config import ExportConfig, SampleConfig
from tfcharrnn.evaluation import BatchScorer
from tfcharrnn.export import export_lib, web
from tfcharrnn.models import cells

CHECK = os.path.join(ROOT, "tests", "js", "web_check.mjs")
CHAR_TEXTS = ["To be, or not to be", "First Citizen:\nBefore we proceed any further",
              "the", "a"]
WORD_TEXTS = ["the cat likes a dog .", "my friend sees the teacher .", "zebra quantum sees ."]
TOLERANCE = 1e-4          # nats per token (issue: equal to Python within 1e-4)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, cell_runs, word_run):
    """{name: (run_dir, export_dir)} for the tiny run of each cell (`cell_runs`) and the
    session's word-level run, all under one folder served by one static server."""
    root = tmp_path_factory.mktemp("web")
    runs = dict(cell_runs, word=word_run.train.checkpoint_dir)
    folders = {}
    for name, run_dir in runs.items():
        export_lib.export(ExportConfig(checkpoint_dir=run_dir, export_dir=str(root / name),
                                       format="web"), out=io.StringIO())
        folders[name] = (run_dir, root / name)
    return root, folders


@pytest.fixture(scope="module")
def static(exports):
    server = StaticServer(exports[0])
    yield server
    server.stop()


def node(url: str, jobs: dict, tmp_path) -> dict:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs), encoding="utf-8")
    result = subprocess.run(["node", CHECK, url, str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def python_scores(run_dir, texts, per_token=True):
    _, vocab, model = checkpoints.restore_model(run_dir)
    return score_lib.score_texts(BatchScorer(model), vocab, texts, per_token)


def python_step_log_probs(run_dir, ids):
    import tensorflow as tf
    from tfcharrnn.models import inference
    _, _, model = checkpoints.restore_model(run_dir)
    step = inference.make_step(model)
    state = model.initial_state(1)
    rows = []
    for token in ids:
        logits, state = step(tf.constant([token], tf.int32), state)
        rows.append(tf.nn.log_softmax(logits)[0].numpy())
    return np.array(rows)


# ---- the folder ----

def test_folder_holds_the_runtime_the_page_and_a_tfjs_manifest(exports):
    _, folders = exports
    run_dir, folder = folders["lstm"]
    names = set(os.listdir(folder))
    assert {"model.json", "tfcharrnn.js", "index.html", "static", "package.json",
            "group1-shard1of1.bin"} <= names
    assert {"app.js", "style.css", "surprise.js", "main.js", "worker.js", "browser.js",
            "requests.js"} <= set(os.listdir(folder / "static"))
    # the page is the server's page, byte for byte
    page = os.path.join(ROOT, "tfcharrnn", "serve", "static")
    assert (folder / "index.html").read_bytes() == open(os.path.join(page, "index.html"),
                                                         "rb").read()
    assert (folder / "static" / "app.js").read_bytes() == open(os.path.join(page, "app.js"),
                                                               "rb").read()
    spec = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert spec["format"] == web.FORMAT and spec["format_version"] == web.FORMAT_VERSION
    assert spec["topology"]["cell"] == "lstm" and spec["topology"]["layers"] == 2
    # the shards hold every weight of the manifest, in order, as tfjs's loadWeights reads them
    group = spec["weightsManifest"][0]
    data = b"".join((folder / p).read_bytes() for p in group["paths"])
    _, _, model = checkpoints.restore_model(run_dir)
    offset = 0
    for spec_w, (name, value) in zip(group["weights"], web.named_weights(model)):
        assert spec_w["name"] == name and spec_w["shape"] == list(value.shape)
        stored = np.frombuffer(data, "<f4", value.size, offset).reshape(value.shape)
        np.testing.assert_array_equal(stored, value)
        offset += value.nbytes
    assert offset == len(data)


def test_shards_are_cut_at_the_shard_size(tmp_path):
    named = [("a", np.arange(10, dtype=np.float32)), ("b", np.ones([3, 5], np.float32))]
    manifest = web.write_shards(named, str(tmp_path), shard_bytes=64)
    paths = manifest[0]["paths"]
    assert paths == ["group1-shard1of2.bin", "group1-shard2of2.bin"]
    assert [os.path.getsize(tmp_path / p) for p in paths] == [64, 100 - 64]


def test_float16_weights_halve_the_shards_and_stay_close(exports, static, tmp_path):
    root, folders = exports
    run_dir, _ = folders["lstm"]
    half = root / "lstm-f16"
    export_lib.export(ExportConfig(checkpoint_dir=run_dir, export_dir=str(half), format="web",
                                   web_weights="float16"), out=io.StringIO())
    full_bytes = os.path.getsize(folders["lstm"][1] / "group1-shard1of1.bin")
    assert os.path.getsize(half / "group1-shard1of1.bin") * 2 == full_bytes
    spec = json.loads((half / "model.json").read_text(encoding="utf-8"))
    assert spec["weightsManifest"][0]["weights"][0]["quantization"] == {"dtype": "float16"}
    js = node(static.url + "lstm-f16/model.json", {"score": CHAR_TEXTS[:2]}, tmp_path)
    for mine, theirs in zip(js["score"], python_scores(run_dir, CHAR_TEXTS[:2], False)):
        assert abs(mine["logProbNats"] - theirs["log_prob_nats"]) / theirs["tokens"] < 1e-2


def test_a_folder_that_cannot_be_written_is_one_line(exports, tmp_path):
    _, folders = exports
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from tfcharrnn.errors import UsageError
    with pytest.raises(UsageError, match="cannot write --export_dir"):
        export_lib.export(ExportConfig(checkpoint_dir=folders["lstm"][0],
                                       export_dir=str(blocker / "sub" / "web"), format="web"),
                          out=io.StringIO())


# ---- the runtime in Node equals Python ----

@pytest.mark.parametrize("cell", cells.NAMES)
def test_node_scores_steps_and_samples_as_python_does(exports, static, tmp_path, cell):
    _, folders = exports
    run_dir, _ = folders[cell]
    ids = [3, 17, 0, 9, 9, 30, 1, 12]
    requests = [dict(prime="First", length=80, seed=3),
                dict(prime="", length=60, seed=-5, sampling="top_k", top_k=5, temperature=0.8),
                dict(prime="the ", length=60, seed=11, sampling="top_p", top_p=0.8),
                dict(prime="a", length=30, sampling="argmax")]
    generate = [{"prime": r["prime"], "length": r["length"], "seed": r.get("seed", 0),
                 "sampling": r.get("sampling", "sample"), "topK": r.get("top_k", 10),
                 "topP": r.get("top_p", 0.9), "temperature": r.get("temperature", 1.0), "row": row}
                for r in requests for row in range(2)]
    js = node(static.url + f"{cell}/model.json",
              {"score": CHAR_TEXTS, "steps": [ids], "generate": generate}, tmp_path)
    assert "error" not in js, js
    for mine, theirs in zip(js["score"], python_scores(run_dir, CHAR_TEXTS)):
        assert mine["tokens"] == theirs["tokens"]
        assert abs(mine["logProbNats"] - theirs["log_prob_nats"]) <= TOLERANCE * max(
            theirs["tokens"], 1)
        assert [t["token"] for t in mine["perToken"]] == [t["token"] for t in theirs["per_token"]]
        assert mine["perToken"][0]["lossNats"] is None
        np.testing.assert_allclose([t["lossNats"] for t in mine["perToken"][1:]],
                                   [t["loss_nats"] for t in theirs["per_token"][1:]],
                                   atol=TOLERANCE)
    np.testing.assert_allclose(np.array(js["steps"][0]), python_step_log_probs(run_dir, ids),
                               atol=TOLERANCE)
    # the same seed draws the same text as `python -m tfcharrnn.sample`, row by row
    expected = [text for r in requests for text in sample_lib.sample(
        SampleConfig(checkpoint_dir=run_dir, num_samples=2, **r), out=io.StringIO())]
    assert js["generate"] == expected


def test_node_word_level_matches_python(exports, static, tmp_path):
    _, folders = exports
    run_dir, folder = folders["word"]
    spec = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    vocab = spec["vocabulary"]
    assert vocab["level"] == "word" and vocab["tokenizer"]["lowercase"] is True
    sentences = [{"prime": "", "minLength": 4, "maxLength": 12, "seed": 2, "row": row}
                 for row in range(3)] + [{"prime": "The cat", "seed": 9, "sampling": "top_k",
                                          "topK": 3}]
    js = node(static.url + "word/model.json",
              {"score": WORD_TEXTS, "steps": [[1, 5, 6, 2]], "sentences": sentences,
               "generate": [{"prime": "the cat", "length": 30, "seed": 4}]}, tmp_path)
    assert "error" not in js, js
    for mine, theirs in zip(js["score"], python_scores(run_dir, WORD_TEXTS)):
        assert mine["tokens"] == theirs["tokens"]
        assert abs(mine["logProbNats"] - theirs["log_prob_nats"]) <= TOLERANCE * theirs["tokens"]
        assert [(t["token"], t.get("unknown", False)) for t in mine["perToken"]] == \
            [(t["token"], t.get("unknown", False)) for t in theirs["per_token"]]
    assert any(t.get("unknown") for t in js["score"][2]["perToken"])       # "zebra", "quantum"
    np.testing.assert_allclose(np.array(js["steps"][0]),
                               python_step_log_probs(run_dir, [1, 5, 6, 2]), atol=TOLERANCE)
    # whole sentences as `sample` draws them (its text is detokenized by NLTK; compare words)
    python = sample_lib.sample(SampleConfig(checkpoint_dir=run_dir, num_samples=3, min_length=4,
                                            max_length=12, seed=2), out=io.StringIO())
    python += sample_lib.sample(SampleConfig(checkpoint_dir=run_dir, prime="The cat", seed=9,
                                             sampling="top_k", top_k=3), out=io.StringIO())
    assert ["".join(s["tokens"]) for s in js["sentences"]] == \
        [t.replace(" ", "") for t in python]
    assert js["generate"][0].startswith("the cat ")
    assert "UNKNOWN_TOKEN" not in js["generate"][0] and "SENTENCE_START" not in js["generate"][0]


# ---- bad folders ----

def damaged_copy(folders, root, name, damage):
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folders["lstm"][1], target)
    damage(target)
    return target


@pytest.mark.parametrize("name, damage, message", [
    ("no-model", lambda d: os.remove(d / "model.json"), "could not fetch model.json"),
    ("bad-json", lambda d: (d / "model.json").write_text("{not json"), "is not valid JSON"),
    ("version", lambda d: (d / "model.json").write_text(
        (d / "model.json").read_text().replace('"format_version": 1', '"format_version": 9')),
     "format version 9"),
    ("other-cell", lambda d: (d / "model.json").write_text(
        (d / "model.json").read_text().replace('"cell": "lstm"', '"cell": "xlstm"')),
     "is a xlstm model, a cell this runtime does not run"),
    ("no-shard", lambda d: os.remove(d / "group1-shard1of1.bin"),
     "could not fetch weight shard group1-shard1of1.bin"),
    ("short-shard", lambda d: (d / "group1-shard1of1.bin").write_bytes(
        (d / "group1-shard1of1.bin").read_bytes()[:-8]), "a shard is damaged"),
])
def test_load_rejects_a_damaged_folder_with_one_line(exports, static, tmp_path, name, damage,
                                                     message):
    root, folders = exports
    damaged_copy(folders, root, name, damage)
    js = node(static.url + f"{name}/model.json", {}, tmp_path)
    assert message in js["error"] and "\n" not in js["error"]


def test_runtime_unit_tests_pass_in_node():
    result = subprocess.run(["node", "--test", os.path.join(ROOT, "tests", "js",
                                                            "runtime.test.mjs")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


# ---- the page, in headless Chromium ----

def open_page(driver, url):
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === 'true'"
                                           " || document.getElementById('status').textContent"),
             what="the page to load the model")


def test_page_generates_from_the_prime_in_the_browser(exports, static, browser):
    open_page(browser, static.url + "lstm/index.html")
    assert browser.execute_script("return document.body.dataset.ready") == "true"
    assert "LSTM, 2 × 16" in browser.execute_script(
        "return document.getElementById('facts').textContent")
    browser.execute_script("""
        window.lengths = [];
        new MutationObserver(() => {
          const s = document.querySelector('#samples .sample');
          if (s) window.lengths.push(s.textContent.length);
        }).observe(document.getElementById('samples'),
                   {childList: true, subtree: true, characterData: true});
        document.getElementById('new_seed').checked = false;
        document.getElementById('seed').value = '7';
        document.getElementById('length').value = '1500';
        document.getElementById('prime').value = 'First';
        document.getElementById('generate').click();""")
    wait_for(lambda: "characters in" in browser.execute_script(
        "return document.getElementById('status').textContent"), timeout=60,
        what="generation to end")
    text = browser.execute_script("return document.querySelector('#samples .sample').textContent")
    lengths = browser.execute_script("return window.lengths")
    status = browser.execute_script("return document.getElementById('status').textContent")
    assert text.startswith("First") and len(text) == len("First") + 1500
    assert len(set(lengths)) >= 3, lengths          # the text grew in several steps
    assert "chars/s" in status
    # the same text as `python -m tfcharrnn.sample` with that seed
    run_dir = exports[1]["lstm"][0]
    assert text == sample_lib.sample(SampleConfig(checkpoint_dir=run_dir, prime="First",
                                                  length=1500, seed=7), out=io.StringIO())[0]


def test_score_in_the_browser_equals_python(exports, static, browser):
    run_dir = exports[1]["lstm"][0]
    open_page(browser, static.url + "lstm/index.html")
    scores = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import(new URL('tfcharrnn.js', location.href).href)
          .then(async ({load}) => {
            const model = await load('model.json');
            done(arguments[0].map((t) => model.score(t).logProbNats));
          }).catch((e) => done(String(e)));""", CHAR_TEXTS)
    python = python_scores(run_dir, CHAR_TEXTS, False)
    for mine, theirs in zip(scores, python):
        assert abs(mine - theirs["log_prob_nats"]) <= TOLERANCE * max(theirs["tokens"], 1)
    # the page's Score panel ranks the lines as Python does
    lines = ["To be, or not to be", "Be not to or be", "the"]
    browser.execute_script("document.getElementById('score-input').value = arguments[0];"
                           "document.getElementById('score').click();", "\n".join(lines))
    wait_for(lambda: "most probable first" in browser.execute_script(
        "return document.getElementById('score-status').textContent"), what="the scores")
    ranked = browser.execute_script(
        "return [...document.querySelectorAll('#score-results tbody tr')]"
        ".map((r) => [r.children[1].textContent, Number(r.children[2].textContent)])")
    expected = sorted(python_scores(run_dir, lines, False), key=lambda r: -r["log_prob_nats"])
    assert [text for text, _ in ranked] == [r["text"] for r in expected]
    np.testing.assert_allclose([log_p for _, log_p in ranked],
                               [r["log_prob_nats"] for r in expected], atol=0.006)


def test_page_shows_a_damaged_shard(exports, static, browser):
    root, folders = exports
    damaged_copy(folders, root, "page-short-shard", lambda d: (d / "group1-shard1of1.bin")
                 .write_bytes((d / "group1-shard1of1.bin").read_bytes()[:100]))
    browser.get(static.url + "page-short-shard/index.html")
    status = wait_for(lambda: browser.execute_script(
        "return document.getElementById('status').textContent"), what="the error")
    assert "could not load the model" in status and "a shard is damaged" in status
    assert browser.execute_script(
        "return document.getElementById('status').classList.contains('error')")
    assert browser.execute_script("return document.getElementById('generate').disabled")


def test_word_tokens_in_javascript_are_nltks_for_ordinary_text():
    """The runtime cannot run NLTK; its tokenizer gives NLTK's tokens for almost every line."""
    from nltk.tokenize import NLTKWordTokenizer
    from tfcharrnn.config import BUNDLED_CORPUS
    with open(BUNDLED_CORPUS, encoding="utf-8") as f:
        lines = [line.strip().lower() for line in f if line.strip()][:4000]
    lines += ["\"Hello,\" she said (quietly) -- don't go!", "It was, in fact, true!",
              "my lord , i will go .", "we cannot, sir; gonna go.", "to 't: o' the state"]
    runtime = os.path.join(ROOT, "tfcharrnn", "export", "web", "tfcharrnn.js")
    script = (f"import {{tokenizeWords}} from {json.dumps(runtime)};\n"
              "import {readFileSync} from 'node:fs';\n"
              "const lines = JSON.parse(readFileSync(0, 'utf8'));\n"
              "console.log(JSON.stringify(lines.map(tokenizeWords)));")
    out = subprocess.run(["node", "--input-type=module", "-e", script], input=json.dumps(lines),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    mine = json.loads(out)
    nltk = [NLTKWordTokenizer().tokenize(line) for line in lines]
    assert mine[-5:] == nltk[-5:]
    agree = sum(a == b for a, b in zip(mine, nltk)) / len(lines)
    assert agree >= 0.99, agree
