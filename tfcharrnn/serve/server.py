"""python -m tfcharrnn.serve: restore a run, warm up, listen, serve until Ctrl-C."""

import errno
import socket
import sys
import time

from tfcharrnn import checkpoints
from tfcharrnn.config import ServeConfig
from tfcharrnn.errors import UsageError


def _require_extra():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise UsageError(f"the server needs the serve extra ({e.name} is not installed); run "
                         f"`pip install \".[serve]\"` in the repository") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line UsageError (port taken, address not here)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is already in use; stop what listens "
                             f"there or pass --port=<another> (--port=0 picks a free one)"
                             ) from None
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror or e}); pass "
                         f"--host=127.0.0.1 (this machine) or an address of this machine"
                         ) from None


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = {"0.0.0.0": socket.gethostname(), "::": socket.gethostname()}.get(host, host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def serve(config: ServeConfig, verbose: bool = False, out=None, ready=None):
    """Serves until interrupted. `ready(url)` is called once listening (tests)."""
    out = out or sys.stdout
    _require_extra()
    import uvicorn
    from tfcharrnn.serve.app import create_app
    from tfcharrnn.serve.engine import Engine
    checkpoints.check_run_dir(config.checkpoint_dir)
    sock = bind(config.host, config.port)      # a taken port is refused before the restore
    run = checkpoints.restore_run(config.checkpoint_dir, config.checkpoint,
                                  precision=config.precision)
    m = run.config.model
    print(f"restored {config.checkpoint_dir} ({m.model}, {m.num_layers} x {m.hidden_size}, "
          f"step {run.step:,}); warming up...", file=out, flush=True)
    started = time.perf_counter()
    engine = Engine(run, config.max_batch, config.lanes)
    engine.warm_up()
    engine.start()
    app = create_app(engine, config)
    server = uvicorn.Server(uvicorn.Config(
        app, log_level="info" if verbose else "warning", access_log=verbose,
        timeout_graceful_shutdown=3, lifespan="off"))
    print(f"serving at {url(sock)} (ready in {time.perf_counter() - started:.1f} s; "
          f"Ctrl-C stops)", file=out, flush=True)
    if ready is not None:
        ready(url(sock))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        engine.stop()
        sock.close()
    print("stopped", file=out, flush=True)
