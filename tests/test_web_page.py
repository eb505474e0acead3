"""`python -m tfcharrnn.serve` as a user runs it: the page in headless Chromium, concurrent
clients over real HTTP, a client that goes away, Ctrl-C. One server process for the module,
serving the session's tiny keras run."""

import asyncio
import json
import signal
import time

import httpx
import pytest

from browser import ServerProcess, wait_for
from conftest import ROOT

MAX_LENGTH = 1_000_000   # tokens: ~30 s for the tiny model, so a request still runs when dropped


@pytest.fixture(scope="module")
def server(served_run):
    process = ServerProcess(ROOT, f"--checkpoint_dir={served_run.train.checkpoint_dir}",
                            f"--max_length={MAX_LENGTH}", "--max_batch=16")
    process.run_dir = served_run.train.checkpoint_dir
    yield process
    process.stop()


def post(server, path, body):
    return httpx.post(server.url + path.lstrip("/"), json=body, timeout=60)


def text_of(driver, selector):
    return driver.execute_script(f"return document.querySelector({json.dumps(selector)})"
                                 f"?.textContent ?? null")


def open_page(driver, server):
    driver.get(server.url)
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === 'true'"),
             what="the page to load the model's facts")


def set_value(driver, element_id, value):
    driver.execute_script("const e = document.getElementById(arguments[0]); e.value = "
                          "arguments[1]; e.dispatchEvent(new Event('input'));", element_id,
                          str(value))


# Records the length of the first sample's text at every change of the page.
OBSERVE = """
window.lengths = [];
new MutationObserver(() => {
  const box = document.querySelector('#samples .sample');
  if (box) window.lengths.push(box.textContent.length);
}).observe(document.getElementById('samples'), {subtree: true, childList: true,
                                               characterData: true});
"""


def test_the_page_streams_generated_text_that_starts_with_the_prime(server, browser):
    from selenium.webdriver.common.by import By
    open_page(browser, server)
    facts = browser.find_element(By.ID, "facts").text
    assert "LSTM, 2 × 16" in facts and "30 steps trained" in facts
    browser.find_element(By.ID, "prime").send_keys("First")
    browser.find_element(By.ID, "new_seed").click()           # keep the seed we set
    set_value(browser, "seed", 11)
    set_value(browser, "length", 3000)
    browser.execute_script(OBSERVE)
    browser.find_element(By.ID, "generate").click()
    wait_for(lambda: "characters in" in browser.find_element(By.ID, "status").text,
             what="the generation to finish")
    shown = text_of(browser, "#samples .sample")
    lengths = browser.execute_script("return window.lengths")
    assert shown.startswith("First") and len(shown) == len("First") + 3000
    assert len(set(lengths)) >= 10 and lengths == sorted(lengths)   # grew, chunk by chunk
    api = post(server, "v1/generate", {"prime": "First", "length": 3000, "seed": 11}).json()
    assert shown == api["texts"][0]                      # what the API (and sample) gives


def test_stop_ends_a_long_generation_and_the_server_drops_it(server, browser):
    from selenium.webdriver.common.by import By
    open_page(browser, server)
    set_value(browser, "length", MAX_LENGTH)
    browser.find_element(By.ID, "generate").click()
    wait_for(lambda: len(text_of(browser, "#samples .sample") or "") > 200,
             what="the first characters")
    browser.find_element(By.ID, "stop").click()
    wait_for(lambda: "stopped" in browser.find_element(By.ID, "status").text,
             what="the page to say it stopped")
    assert len(text_of(browser, "#samples .sample")) < MAX_LENGTH
    wait_for(lambda: httpx.get(server.url + "healthz").json()["running_samples"] == 0,
             timeout=10, what="the server to drop the stopped request")


def test_score_panel_ranks_lines_and_surprise_view_colours_each_character(server, browser):
    from selenium.webdriver.common.by import By
    open_page(browser, server)
    lines = ["qzq xqz zqx", "First Citizen:"]
    browser.find_element(By.ID, "score-input").send_keys("\n".join(lines))
    browser.find_element(By.ID, "score").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#score-results tbody tr"),
             what="the score table")
    rows = browser.find_elements(By.CSS_SELECTOR, "#score-results tbody tr")
    ranked = [row.find_elements(By.TAG_NAME, "td")[1].text for row in rows]
    expected = post(server, "v1/score", {"texts": lines, "sort": True}).json()["results"]
    assert ranked == [r["text"] for r in expected] == ["First Citizen:", "qzq xqz zqx"]

    text = "First Citizen:\nBefore we proceed"
    browser.find_element(By.ID, "surprise-input").send_keys(text)
    browser.find_element(By.ID, "surprise").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#surprise-view span"),
             what="the surprise view")
    spans = browser.execute_script("""
        return [...document.querySelectorAll('#surprise-view span')].map(
            s => [s.textContent, s.style.backgroundColor, s.title, s.dataset.loss]);""")
    assert "".join(s[0] for s in spans) == text
    assert spans[0][1] == "" and "not predicted" in spans[0][2]
    assert all(s[1].startswith("rgb(") and "p = " in s[2] for s in spans[1:])
    losses = [float(s[3]) for s in spans[1:]]
    assert len({s[1] for s in spans[1:]}) > 3                   # not one flat colour
    assert max(losses) > min(losses) + 0.5
    assert "mean loss" in browser.find_element(By.ID, "surprise-status").text


def test_sixteen_concurrent_clients_good_and_bad_all_answered_correctly(server):
    good = [{"prime": "Fir", "length": 200, "seed": i, "num_samples": 1 + i % 3}
            for i in range(8)]
    expected = [post(server, "v1/generate", body).json()["texts"] for body in good]
    bad = [("v1/generate", b"{broken", 400), ("v1/generate", {"length": "many"}, 422),
           ("v1/generate", {"temperature": -1}, 422), ("v1/generate", {"colour": 1}, 422),
           ("v1/score", {"texts": []}, 422), ("v1/nothing", {}, 404),
           ("v1/generate", {"length": MAX_LENGTH + 1}, 422),
           ("v1/generate", {"prime": "\u2603"}, 422)]

    async def client(i, http):
        if i % 2 == 0:                         # a good request, streamed for half of them
            body = good[i // 2]
            if i % 4 == 0:
                async with http.stream("POST", "v1/generate/stream", json=body) as r:
                    text = "".join([chunk async for chunk in r.aiter_text()])
                done = text.strip().split("\n\n")[-1]
                assert done.startswith("event: done"), done
                return json.loads(done.split("data: ", 1)[1])["texts"] == expected[i // 2]
            r = await http.post("v1/generate", json=body)
            return r.status_code == 200 and r.json()["texts"] == expected[i // 2]
        path, body, status = bad[i // 2]
        r = await (http.post(path, content=body, headers={"content-type": "application/json"})
                   if isinstance(body, bytes) else http.post(path, json=body))
        return r.status_code == status and "error" in r.json() and "\n" not in r.json()["error"]

    async def all_clients():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            return await asyncio.gather(*[client(i, http) for i in range(16)])

    assert asyncio.run(all_clients()) == [True] * 16
    health = httpx.get(server.url + "healthz").json()
    assert (health["status"], health["running_samples"], health["waiting_requests"]) == (
        "ok", 0, 0)
    assert post(server, "v1/generate", good[0]).json()["texts"] == expected[0]
    assert not [line for line in server.errors if "Traceback" in line or "error" in line]


def test_a_client_that_disconnects_stops_its_stream(server):
    with httpx.Client(base_url=server.url, timeout=60) as http:
        with http.stream("POST", "v1/generate/stream",
                         json={"length": MAX_LENGTH, "seed": 1}) as r:
            chunks = r.iter_text()           # kept: dropping it would close the connection
            assert next(chunks).startswith("event: chunk")
            assert http.get("healthz").json()["running_samples"] == 1
    started = time.time()
    wait_for(lambda: httpx.get(server.url + "healthz").json()["running_samples"] == 0,
             timeout=10, what="the server to drop the stream")
    assert time.time() - started < 5


def test_start_up_errors_name_the_problem(server, tmp_path):
    """In-process (the command prints a UsageError as one line, as every command does)."""
    from tfcharrnn.config import ServeConfig
    from tfcharrnn.errors import UsageError
    from tfcharrnn.serve import server as serve_lib
    with pytest.raises(UsageError, match="checkpoint directory not found"):
        serve_lib.serve(ServeConfig(checkpoint_dir=str(tmp_path / "none")))
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is already in use; stop "
                                         f"what listens there or pass --port="):
        serve_lib.serve(ServeConfig(checkpoint_dir=server.run_dir, port=port))


def test_a_word_level_run_on_the_page(word_run, browser):
    """Sentences with the word-level controls, and the surprise view in words (unknown
    words marked); the server runs in this process."""
    from browser import ServerThread
    from selenium.webdriver.common.by import By
    server = ServerThread(word_run.train.checkpoint_dir, max_batch=4)
    driver = browser
    try:
        open_page(driver, server)
        visible = driver.execute_script(
            "return [...document.querySelectorAll('#settings label')].filter("
            "l => l.offsetParent !== null).map(l => l.textContent.trim().split(/\\s+/)[0])")
        assert "Fewest" in visible and "Most" in visible and "Length" not in visible
        driver.find_element(By.ID, "prime").send_keys("The cat")
        driver.find_element(By.ID, "new_seed").click()
        set_value(driver, "seed", 4)
        set_value(driver, "num_samples", 3)
        set_value(driver, "min_length", 3)
        driver.find_element(By.ID, "generate").click()
        wait_for(lambda: "sentences in" in driver.find_element(By.ID, "status").text,
                 what="the sentences")
        shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#samples .sample")]
        api = httpx.post(server.url + "v1/generate", json={
            "prime": "The cat", "seed": 4, "num_samples": 3, "min_length": 3}).json()
        assert shown == api["texts"] and all(t.lower().startswith("the cat") for t in shown)

        driver.find_element(By.ID, "surprise-input").send_keys("The cat likes the zebra.")
        driver.find_element(By.ID, "surprise").click()
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#surprise-view span"),
                 what="the surprise view")
        spans = driver.execute_script(
            "return [...document.querySelectorAll('#surprise-view span')].map("
            "s => [s.textContent, s.title])")
        assert [s[0] for s in spans] == ["the", "cat", "likes", "the", "zebra", ".", "⏎"]
        assert "UNKNOWN_TOKEN" in spans[4][1] and "UNKNOWN_TOKEN" not in spans[1][1]
    finally:
        server.stop()


def test_ctrl_c_stops_the_server_cleanly(server):
    """Last in the module: the module's server itself, stopped as a user would."""
    assert server.lines[0].startswith(f"restored {server.run_dir}")
    assert server.url.startswith("http://127.0.0.1:")
    assert server.stop(signal.SIGINT) == 0
    assert server.lines[-1].strip() == "stopped"
    assert not [line for line in server.errors if line.strip()]
