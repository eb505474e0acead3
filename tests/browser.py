"""Headless Chromium for the page's tests (and docs/screenshot.py): Debian's chromium and
chromium-driver through Selenium, which then downloads nothing. Without them the browser tests
skip, except under CI (CI=true), where a skip would hide the page from the suite: there they
fail. `.ci/run` installs both packages."""

import os
import subprocess
import sys
import threading
import time

import pytest

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
PACKAGES = "Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"


def chromium_path():
    return next((p for p in CHROMIUM if os.path.exists(p)), None)


def require_chromium():
    """Skips (fails under CI) when Chromium, its driver or Selenium is missing."""
    missing = []
    if chromium_path() is None:
        missing.append("chromium")
    if not os.path.exists(CHROMEDRIVER):
        missing.append("chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e \".[test]\")")
    if missing:
        message = f"the browser tests need {', '.join(missing)}: {PACKAGES}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI the browser tests must run, not skip")
        pytest.skip(message)


def chrome(width=1200, height=1000):
    """A headless Chromium driven by Selenium, with no network of its own."""
    import tempfile
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 f"--window-size={width},{height}",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(condition, timeout=30.0, interval=0.05, what="the page"):
    """Polls condition() until it returns something truthy; returns it."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class ServerProcess:
    """`python -m tfcharrnn.serve ... --port=0` as a user runs it; `url` once it is ready."""

    def __init__(self, root, *args, timeout=180):
        env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfcharrnn.serve", "--port=0", *args], cwd=root, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.errors = []
        threading.Thread(target=self._read, args=(self.process.stderr, self.errors),
                         daemon=True).start()
        self.url = None
        deadline = time.time() + timeout
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("serving at "):
                self.url = line.split()[2]
                break
            if time.time() > deadline:
                break
        if self.url is None:
            self.stop()
            raise AssertionError(f"the server did not start: {''.join(self.lines)}"
                                 f"{''.join(self.errors)}")
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines),
                         daemon=True).start()

    @staticmethod
    def _read(stream, into):
        for line in stream:
            into.append(line)

    def stop(self, sig=None):
        """Stops it like Ctrl-C (SIGINT) and returns the exit status."""
        import signal
        if self.process.poll() is None:
            self.process.send_signal(sig or signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class ServerThread:
    """The server in this process (no start-up of a second TensorFlow): an engine and the app
    under uvicorn in a thread, on a free loopback port."""

    def __init__(self, run_dir, **limits):
        import uvicorn
        from tfcharrnn import checkpoints
        from tfcharrnn.config import ServeConfig
        from tfcharrnn.serve.app import create_app
        from tfcharrnn.serve.engine import Engine
        from tfcharrnn.serve.server import bind, url
        config = ServeConfig(checkpoint_dir=run_dir, port=0, **limits)
        self.engine = Engine(checkpoints.restore_run(run_dir), config.max_batch, config.lanes)
        self.engine.warm_up()
        self.engine.start()
        self.sock = bind("127.0.0.1", 0)
        self.url = url(self.sock)
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.engine, config),
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30, what="the server to start")

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.engine.stop()
        self.sock.close()


class StaticServer:
    """A folder served over HTTP on a free loopback port, in a thread of this process, as any
    static web server would serve a web export (no tfcharrnn code answers)."""

    def __init__(self, directory):
        import functools
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Quiet, directory=str(directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
