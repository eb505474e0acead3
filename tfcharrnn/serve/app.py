"""The web app: the page, the JSON API, and errors as JSON. `create_app(engine, limits)`.

Routes:
  GET  /                     the page (static/index.html; its scripts and style under /static)
  GET  /v1/model             the model's facts, vocabulary and this server's limits
  POST /v1/generate          {prime, length, ...} -> {texts}; with `Accept: text/event-stream`
                             the same events as /v1/generate/stream
  POST /v1/generate/stream   Server-Sent Events: `chunk` {sample, delta} (append) or
                             {sample, text} (replace: word level), then `done` {texts}, or
                             `error` {error}
  POST /v1/score             {texts, per_token, unit, sort} -> {results}
  GET  /healthz              {status: "ok"} while the engine runs
  GET  /openapi.json         the API as OpenAPI (FastAPI's own)

Every error is a 4xx (or 500) with the body {"error": "<what is wrong; what to do>"}. The
handlers do no model work: they check a request, hand a job to the engine thread and wait
for its events, so the event loop stays free for other clients.
"""

import asyncio
import collections
import json
import math
import os
import threading

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from tfcharrnn import sample_lib, score_lib
from tfcharrnn.config import ServeConfig
from tfcharrnn.decoding.sampling import Settings
from tfcharrnn.errors import UsageError
from tfcharrnn.serve import api
from tfcharrnn.serve.engine import ScoreJob
from tfcharrnn.serve.limits import BodyLimit

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# A text longer than this is refused by /v1/score: one long text runs as one stream
# (~10,000 characters/s), and every other request waits for it.
MAX_SCORE_CHARS = 20000
# The page may load only what this server sends: no CDN, no inline script.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                "X-Content-Type-Options": "nosniff"}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering
ROUTES = ("GET /, GET /v1/model, POST /v1/generate, POST /v1/generate/stream, POST /v1/score, "
          "GET /healthz, GET /openapi.json")


def create_app(engine, limits: ServeConfig, log=None) -> FastAPI:
    """The app over a started `engine.Engine`; `limits` is the server's config."""
    # No /docs or /redoc: FastAPI's pages load their scripts from a CDN. The OpenAPI
    # description itself is served, for any viewer or client generator.
    app = FastAPI(title="tfcharrnn", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Generate and score text with a trained tfcharrnn model.")
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_kb * 1024)
    _add_error_handlers(app, engine.log if log is None else log)
    _add_page_and_facts(app, engine, limits)
    _add_generate(app, engine, limits)
    _add_score(app, engine, limits)
    return app


def _add_page_and_facts(app: FastAPI, engine, limits: ServeConfig):
    facts = model_facts(engine, limits)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(os.path.join(STATIC, "index.html"), headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    async def healthz():
        """{"status": "ok"} while the engine's threads run (else 503), with the samples being
        generated, the requests waiting, the lanes, and the chunks run so far with their
        mean number of samples."""
        if not engine.alive:
            return JSONResponse({"error": "the model's engine has stopped; restart the server"},
                                status_code=503)
        return {"status": "ok", **engine.stats()}

    @app.get("/v1/model")
    async def model_info():
        """The model's facts (cell, layers, units, parameters, steps, best validation loss),
        its vocabulary, and this server's limits and defaults."""
        return facts


def _add_generate(app: FastAPI, engine, limits: ServeConfig):
    mailboxes = {}

    def start(body: api.GenerateRequest, stream: bool) -> "Generation":
        config = api.sample_config(body, engine.vocab, limits)
        loop = asyncio.get_running_loop()
        mailbox = mailboxes.get(loop) or mailboxes.setdefault(loop, Mailbox(loop))
        generation = Generation(mailbox, config, engine.vocab, stream)
        api.check_prime(config, generation.job, limits)
        engine.submit(generation.job)
        return generation

    @app.post("/v1/generate")
    async def generate(body: api.GenerateRequest, request: Request):
        """The samples, as `python -m tfcharrnn.sample` would print them for these settings;
        with `Accept: text/event-stream`, streamed as /v1/generate/stream streams them."""
        if "text/event-stream" in request.headers.get("accept", ""):
            return _event_stream(start(body, stream=True))
        return await start(body, stream=False).result(request)

    @app.post("/v1/generate/stream")
    async def generate_stream(body: api.GenerateRequest):
        """The same request, answered as Server-Sent Events while the text is drawn: `chunk`
        events, then `done` with the texts (or `error`)."""
        return _event_stream(start(body, stream=True))


def _add_score(app: FastAPI, engine, limits: ServeConfig):
    @app.post("/v1/score")
    async def score(body: api.ScoreRequest):
        """Each text's log-probability in nats, token count, loss per token and perplexity,
        as `python -m tfcharrnn.score` prints them; with per_token, each token's loss."""
        texts = _score_texts(body, engine.vocab, limits)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        engine.submit(ScoreJob(texts, body.per_token,
                               lambda result: _post(loop, _resolve, future, result)))
        results = await future
        if isinstance(results, UsageError):
            raise results
        if isinstance(results, Exception):
            raise RuntimeError(f"scoring failed ({type(results).__name__}: {results})")
        if body.sort:
            results.sort(key=lambda r: -r["log_prob_nats"])
        return {"results": results}


def model_facts(engine, limits: ServeConfig) -> dict:
    run, vocab = engine.run, engine.vocab
    model = run.config.model
    facts = {
        "cell": model.model, "backend": model.backend, "layers": model.num_layers,
        "units": model.hidden_size, "embedding_size": model.embedding_size,
        "parameters": engine.parameters, "precision": engine.model.config.precision,
        "level": vocab.level, "vocab_size": len(vocab),
        "lowercase": vocab.lowercase if vocab.level == "char" else vocab.tokenizer.lowercase,
        "steps": run.step,
        "best_val_loss": run.best_val_loss if math.isfinite(run.best_val_loss) else None,
        "checkpoint": os.path.basename(run.path),
        "vocabulary": list(vocab.tokens),
        "limits": {"max_length": limits.max_length, "max_batch": limits.max_batch,
                   "max_texts": limits.max_texts, "max_body_bytes": limits.max_body_kb * 1024,
                   "max_score_chars": MAX_SCORE_CHARS},
        "defaults": api.GenerateRequest().model_dump(),
    }
    if vocab.level == "word":
        facts["special_tokens"] = {"unknown": vocab.tokens[vocab.unknown_id],
                                   "start": vocab.tokens[vocab.start_id],
                                   "end": vocab.tokens[vocab.end_id]}
    return facts


def _score_texts(body: api.ScoreRequest, vocab, limits: ServeConfig) -> list:
    if not body.texts:
        raise UsageError('texts is empty; send at least one text, e.g. {"texts": ["To be"]}')
    if len(body.texts) > limits.max_texts:
        raise UsageError(f"{len(body.texts)} texts are more than this server's limit of "
                         f"{limits.max_texts}; send them in several requests (the server's "
                         f"--max_texts sets it)")
    long = [i for i, t in enumerate(body.texts) if len(t) > MAX_SCORE_CHARS]
    if long:
        raise UsageError(f"text {long[0]} has {len(body.texts[long[0]]):,} characters, more "
                         f"than {MAX_SCORE_CHARS:,}; split it into several texts")
    if body.unit == "sentence":
        return [s for text in body.texts for s in score_lib.split(text, "sentence", vocab)]
    return list(body.texts)


def _post(loop, function, *args):
    """Runs function(*args) on the event loop, from the engine thread."""
    try:
        loop.call_soon_threadsafe(function, *args)
    except RuntimeError:
        pass   # the loop has closed: the server is stopping


class Mailbox:
    """Events from the engine's threads to queues on the event loop. Waking the loop costs a
    system call and a turn of the loop; a chunk of 32 samples makes 32 events, so they are
    delivered together, with one wake-up for whatever has piled up."""

    def __init__(self, loop):
        self.loop = loop
        self._items = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def post(self, queue: asyncio.Queue, item):
        with self._lock:
            self._items.append((queue, item))
            if self._scheduled:
                return
            self._scheduled = True
        _post(self.loop, self._deliver)

    def _deliver(self):
        with self._lock:
            items, self._items = self._items, collections.deque()
            self._scheduled = False
        for queue, item in items:
            queue.put_nowait(item)


def _resolve(future, result):
    if not future.done():
        future.set_result(result)


class Generation:
    """A generation job seen from the event loop: its events as they come."""

    def __init__(self, mailbox: Mailbox, config, vocab, stream: bool):
        self.events = asyncio.Queue()
        self.config = config
        settings = Settings.of(config.sampling, config.temperature, config.top_k, config.top_p,
                               rows=config.num_samples)

        def chunk(row, text, replace):
            mailbox.post(self.events,
                         ("chunk", {"sample": row, ("text" if replace else "delta"): text}))

        self.job = sample_lib.job(config, vocab, settings, listener=chunk if stream else None,
                                  prime_name="prime")
        self.job.failed = None
        self.job.on_done = lambda: mailbox.post(self.events, ("end", None))

    def final(self):
        """The last event: the texts, or what went wrong."""
        if self.job.failed is not None:
            return "error", {"error": "generation failed in the server "
                                      f"({type(self.job.failed).__name__}); try again"}
        body = {"texts": self.job.texts}
        if hasattr(self.job, "short"):          # word level: sentences under min_length
            body["short"] = self.job.short
        return "done", body

    async def stream(self):
        """Yields lists of (event, data) pairs, each what has arrived since the last: chunks,
        then the final event. Closing the iterator early (a client gone) cancels the job."""
        try:
            while True:
                events = [await self.events.get()]
                while not self.events.empty():
                    events.append(self.events.get_nowait())
                if events[-1][0] == "end":
                    yield events[:-1] + [self.final()]
                    return
                yield events
        finally:
            self.job.cancelled = True      # no-op once the job is done

    async def result(self, request: Request):
        """The final body, or an error response; cancels the job if the client goes away."""
        try:
            while True:
                getter = asyncio.ensure_future(self.events.get())
                while not getter.done():
                    await asyncio.wait({getter}, timeout=0.5)
                    if not getter.done() and await request.is_disconnected():
                        getter.cancel()
                        return JSONResponse({"error": "client went away"}, status_code=499)
                kind, data = getter.result()
                if kind == "end":
                    kind, data = self.final()
                    return data if kind == "done" else JSONResponse(data, status_code=500)
        finally:
            self.job.cancelled = True      # no-op once the job is done


def _event_stream(generation: Generation) -> StreamingResponse:
    async def events():
        async for batch in generation.stream():
            yield "".join(f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                          for kind, data in batch)
    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


# ---- errors ----

def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _add_error_handlers(app: FastAPI, log):
    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        model = api.ScoreRequest if request.url.path.endswith("/score") else api.GenerateRequest
        return _validation_error(exc.errors(), model)

    @app.exception_handler(UsageError)
    async def usage(request, exc):
        return _error(422, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        if exc.status_code == 404:
            return _error(404, f"no such path: {request.url.path}; this server answers "
                               f"{ROUTES}")
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "another method")
            return _error(405, f"{request.method} is not allowed on {request.url.path}; use "
                               f"{allowed}")
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request, exc):
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        log(f"error: {request.method} {request.url.path} failed ({type(exc).__name__}: {text})")
        return _error(500, f"internal error ({type(exc).__name__}); the server keeps running, "
                           f"try again or report it")


EXAMPLE = '{"prime": "ROMEO:", "length": 200}'


def _validation_error(errors: list, model) -> JSONResponse:
    """pydantic's errors as one line: the first, and how many more."""
    first = errors[0]
    kind, where = first.get("type", ""), [str(p) for p in first.get("loc", ())[1:]]
    if kind == "json_invalid":
        detail = first.get("ctx", {}).get("error", "")
        return _error(400, f"the request body is not valid JSON ({detail}); send a JSON object, "
                           f"e.g. {EXAMPLE}")
    if not where or kind in ("model_attributes_type", "dict_type"):
        return _error(422, f"the request body must be a JSON object, e.g. {EXAMPLE}")
    field = ".".join(where)
    if kind == "extra_forbidden":
        message = f"unknown field {field!r}; the fields are: {api.fields(model)}"
    elif kind == "missing":
        message = f"{field} is required"
    else:
        message = (f"{field}: {first.get('msg', 'invalid')[:1].lower()}"
                   f"{first.get('msg', 'invalid')[1:]}, got {json.dumps(first.get('input'))[:60]}")
    more = len(errors) - 1
    return _error(422, message + (f" (and {more} more problem{'s' * (more > 1)})" if more else ""))
