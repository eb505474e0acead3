"""The model on a web page and over HTTP: python -m tfcharrnn.serve --checkpoint_dir=D

`engine.py`: the thread that owns the model and runs every request (generation batched across
requests, `decoding/streams.py`; scoring); `api.py`: request bodies and their checks;
`app.py`: the FastAPI app (page, JSON API, Server-Sent Events, errors); `limits.py`: the cap
on request bodies; `server.py`: restore, warm up, listen; `static/`: the page (plain
HTML/CSS/JavaScript, no build step, nothing from elsewhere); `__main__.py`: the command.
Needs the `serve` extra: pip install ".[serve]".
"""
