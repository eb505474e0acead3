"""The server's API in-process (FastAPI's TestClient and httpx over ASGI; no port): answers
equal the commands', requests are batched without changing their text, bad input is a 4xx
with one line of JSON."""

import asyncio
import io
import json
import math
import re

import httpx
import pytest
from fastapi.testclient import TestClient

from tfcharrnn import checkpoints, sample_lib, score_lib
from tfcharrnn.config import SampleConfig, ScoreConfig, ServeConfig
from tfcharrnn.serve.app import create_app
from tfcharrnn.serve.engine import STREAM_CHUNK, Engine


class Served:
    def __init__(self, run_dir, **limits):
        self.run_dir = run_dir
        self.logged = []
        self.limits = ServeConfig(checkpoint_dir=run_dir, **limits)
        self.engine = Engine(checkpoints.restore_run(run_dir), self.limits.max_batch,
                             self.limits.lanes, log=self.logged.append)
        self.engine.start()
        self.app = create_app(self.engine, self.limits)
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def close(self):
        self.engine.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture(scope="module")
def served(served_run):
    """The session's served run, with small limits."""
    with Served(served_run.train.checkpoint_dir, max_length=600, max_batch=8, max_texts=5,
                max_body_kb=4) as s:
        yield s


@pytest.fixture(scope="module")
def served_words(word_run):
    with Served(word_run.train.checkpoint_dir, max_batch=8) as s:
        yield s


def sample_command(run_dir, **settings):
    return sample_lib.sample(SampleConfig(checkpoint_dir=run_dir, **settings), out=io.StringIO())


def events(response):
    """The Server-Sent Events of a response body: [(event, data)]."""
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


SETTINGS = [dict(prime="First", length=60, seed=3, num_samples=2),
            dict(prime="Be", length=50, sampling="top_k", top_k=5, temperature=0.7, seed=1),
            dict(prime="", length=40, sampling="top_p", top_p=0.8, seed=4),
            dict(prime="What", length=30, sampling="argmax"),
            dict(prime="a", length=300, seed=2, stop="e ")]


def test_generate_returns_what_the_sample_command_prints(served):
    for settings in SETTINGS:
        r = served.client.post("/v1/generate", json=settings)
        assert r.status_code == 200, r.text
        assert r.json()["texts"] == sample_command(served.run_dir, **settings), settings
    texts = served.client.post("/v1/generate", json=SETTINGS[0]).json()["texts"]
    assert texts[0] != texts[1] and all(t.startswith("First") for t in texts)
    assert len(texts[0]) == len("First") + 60


def test_the_stream_sends_chunks_as_they_come_then_the_texts(served):
    settings = dict(prime="Th", length=300, seed=7, num_samples=2)
    for r in (served.client.post("/v1/generate/stream", json=settings),
              served.client.post("/v1/generate", json=settings,
                                 headers={"Accept": "text/event-stream"})):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        got = events(r)
        kinds = [kind for kind, _ in got]
        assert kinds[-1] == "done" and set(kinds[:-1]) == {"chunk"}
        texts = got[-1][1]["texts"]
        assert texts == sample_command(served.run_dir, **settings)
        for row in (0, 1):
            pieces = [data["delta"] for kind, data in got[:-1] if data["sample"] == row]
            assert len(pieces) >= 300 // STREAM_CHUNK and "Th" + "".join(pieces) == texts[row]


def test_concurrent_requests_are_batched_and_each_gets_its_own_text(served):
    """16 requests at once, with different settings: the engine draws them together (its
    peak rows), and each text equals the one the request gets alone."""
    requests = [dict(SETTINGS[i % len(SETTINGS)], seed=100 + i) for i in range(16)]
    alone = [served.client.post("/v1/generate", json=r).json()["texts"] for r in requests]
    for lane in served.engine.lanes:
        lane.decoder.peak_rows = 0

    async def together():
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*[client.post("/v1/generate", json=r)
                                          for r in requests])

    answers = asyncio.run(together())
    assert [a.json()["texts"] for a in answers] == alone
    assert served.engine.peak_rows > 4       # several requests' rows in one batch
    assert served.engine.peak_rows <= served.limits.max_batch


def test_score_equals_the_score_command_and_per_token_losses_add_up(served, tmp_path):
    texts = ["First Citizen:", "Before we proceed any further, hear me speak.", "ab", "x"]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    expected = score_lib.score(ScoreConfig(checkpoint_dir=served.run_dir, input=str(path)),
                               out=io.StringIO())
    r = served.client.post("/v1/score", json={"texts": texts, "per_token": True})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    for mine, theirs in zip(results, expected):
        assert mine["tokens"] == theirs["tokens"]
        assert mine["log_prob_nats"] == pytest.approx(theirs["log_prob_nats"], abs=1e-5)
        per_token = mine["per_token"]
        assert "".join(t["token"] for t in per_token) == mine["text"]
        assert per_token[0]["loss_nats"] is None        # the first character is read
        assert -sum(t["loss_nats"] for t in per_token[1:]) == pytest.approx(
            mine["log_prob_nats"], abs=1e-4)
    assert results[3]["tokens"] == 0 and results[3]["loss_nats_per_token"] is None
    ranked = served.client.post("/v1/score", json={"texts": texts[:3], "sort": True}).json()
    logp = [x["log_prob_nats"] for x in ranked["results"]]
    assert logp == sorted(logp, reverse=True) and "per_token" not in ranked["results"][0]


def test_model_facts(served):
    facts = served.client.get("/v1/model").json()
    run = checkpoints.load_run_config(served.run_dir)
    assert (facts["cell"], facts["layers"], facts["units"]) == (
        run.model.model, run.model.num_layers, run.model.hidden_size)
    assert facts["steps"] == run.train.max_steps == 30
    assert 0 < facts["best_val_loss"] < math.log(facts["vocab_size"]) + 1
    vocab = checkpoints.load_vocab(served.run_dir)
    assert facts["vocabulary"] == vocab.tokens and facts["vocab_size"] == len(vocab)
    _, _, model = checkpoints.restore_model(served.run_dir)
    assert facts["parameters"] == sum(int(v.shape.num_elements())
                                      for v in model.trainable_variables)
    assert facts["limits"]["max_length"] == 600 and facts["defaults"]["length"] == 500
    assert served.client.get("/healthz").json()["status"] == "ok"
    page = served.client.get("/")
    assert page.status_code == 200 and "Generate" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert served.client.get("/static/app.js").status_code == 200
    assert "/v1/generate" in served.client.get("/openapi.json").text
    assert served.client.get("/docs").status_code == 404      # its page would load a CDN


BAD = [  # (method, path, body or raw string, status, words the error must contain)
    ("POST", "/v1/generate", "{not json", 400, "not valid JSON"),
    ("POST", "/v1/generate", "[1, 2]", 422, "must be a JSON object"),
    ("POST", "/v1/generate", {"length": "5"}, 422, "length: input should be a valid integer"),
    ("POST", "/v1/generate", {"length": 2.5}, 422, "length"),
    ("POST", "/v1/generate", {"lenght": 5}, 422, "unknown field 'lenght'; the fields are"),
    ("POST", "/v1/generate", {"length": 601}, 422, "above this server's limit of 600"),
    ("POST", "/v1/generate", {"length": 0}, 422, "length must be a positive integer"),
    ("POST", "/v1/generate", {"temperature": 0}, 422,
     "temperature must be positive with sampling=sample"),
    ("POST", "/v1/generate", {"sampling": "top_p", "top_p": 1.5}, 422,
     "top_p must be in (0, 1]"),
    ("POST", "/v1/generate", {"sampling": "beam"}, 422, "sampling"),
    ("POST", "/v1/generate", {"sampling": "top_k", "top_k": 1000}, 422,
     "larger than the vocabulary"),
    ("POST", "/v1/generate", {"prime": "We \u00e9\u00e8"}, 422,
     "prime has 2 character(s) the model's vocabulary lacks: '\u00e8' '\u00e9'"),
    ("POST", "/v1/generate", {"num_samples": 9}, 422, "limit of 8"),
    ("POST", "/v1/generate", {"prime": "a" * 601}, 422, "the prime has 601 tokens"),
    ("POST", "/v1/generate", {"seed": 2 ** 64}, 422, "seed"),
    ("POST", "/v1/score", {"texts": []}, 422, "texts is empty"),
    ("POST", "/v1/score", {"texts": ["a"] * 6}, 422, "6 texts are more than"),
    ("POST", "/v1/score", {"texts": "abc"}, 422, "texts: input should be a valid list"),
    ("POST", "/v1/score", {}, 422, "texts is required"),
    ("POST", "/v1/score", {"texts": ["\u00e9t\u00e9"]}, 422,
     "the text '\u00e9t\u00e9' has 1 character(s) the model's vocabulary lacks: '\u00e9'; remove"),
    ("POST", "/v1/score", {"texts": ["a"], "per_token": "yes"}, 422, "per_token"),
    ("POST", "/v1/score", {"texts": ["a" * 5000]}, 413, "limit of 4 KiB"),
    ("GET", "/v1/nothing", None, 404, "no such path: /v1/nothing"),
    ("GET", "/v1/generate", None, 405, "GET is not allowed on /v1/generate; use POST"),
    ("DELETE", "/v1/model", None, 405, "DELETE is not allowed"),
]


@pytest.mark.parametrize("method,path,body,status,words", BAD,
                         ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_requests_get_a_4xx_with_one_line_of_json(served, method, path, body, status,
                                                      words):
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    r = served.client.request(method, path, **kwargs,
                              headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert words in error and "\n" not in error and "Traceback" not in error
    assert served.client.get("/healthz").json()["status"] == "ok"
    assert served.logged == []           # nothing for the server's log either


def test_server_flags_are_checked():
    from tfcharrnn.errors import UsageError
    for bad, words in [(dict(port=70000), "--port must be between 0 and 65535"),
                       (dict(port=-1), "--port must be between"),
                       (dict(max_batch=0), "--max_batch must be a positive integer"),
                       (dict(host=""), "--host must name an address"),
                       (dict(checkpoint="newest"), "unknown --checkpoint='newest'")]:
        with pytest.raises(UsageError, match=re.escape(words)):
            ServeConfig(**bad)


def test_a_chunked_body_over_the_cap_is_refused(served):
    def chunks():
        for _ in range(10):
            yield b" " * 1000
    r = served.client.post("/v1/score", content=chunks(),
                           headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit of 4 KiB" in r.json()["error"]


def test_word_level_generates_sentences_like_the_command(served_words):
    run_dir = served_words.run_dir
    for settings in [dict(num_samples=3, seed=2, min_length=3),
                     dict(prime="The cat", num_samples=2, seed=5, sampling="top_k", top_k=4)]:
        r = served_words.client.post("/v1/generate/stream", json=settings)
        got = events(r)
        texts = got[-1][1]["texts"]
        assert got[-1][0] == "done" and got[-1][1]["short"] == 0
        assert texts == sample_command(run_dir, **settings)
        assert all(data.get("text") is not None for kind, data in got[:-1])  # replaced whole
    assert all(t.lower().startswith("the cat") for t in texts)
    r = served_words.client.post("/v1/generate", json={"stop": "."})
    assert r.status_code == 422 and "stop is for character-level models" in r.json()["error"]


def test_word_level_scores_sentences_with_unknown_words_marked(served_words, tmp_path):
    text = "The cat likes the zebra. My friend helps a dog."
    r = served_words.client.post("/v1/score", json={"texts": [text], "per_token": True,
                                                    "unit": "sentence"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["text"] for x in results] == ["The cat likes the zebra.", "My friend helps a dog."]
    first = results[0]["per_token"]
    assert [t["token"] for t in first] == ["the", "cat", "likes", "the", "zebra", ".",
                                           "SENTENCE_END"]
    assert [t.get("unknown", False) for t in first] == [False] * 4 + [True, False, False]
    assert -sum(t["loss_nats"] for t in first) == pytest.approx(results[0]["log_prob_nats"],
                                                                 abs=1e-4)
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    expected = score_lib.score(ScoreConfig(checkpoint_dir=served_words.run_dir,
                                           input=str(path), unit="sentence"), out=io.StringIO())
    assert [x["log_prob_nats"] for x in results] == pytest.approx(
        [x["log_prob_nats"] for x in expected], abs=1e-5)


def test_without_the_serve_extra_the_command_says_how_to_install_it(monkeypatch):
    import sys
    from tfcharrnn.errors import UsageError
    from tfcharrnn.serve import server
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(UsageError, match=re.escape('pip install ".[serve]"')):
        server.serve(ServeConfig(checkpoint_dir="nowhere"))
