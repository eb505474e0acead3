"""Concurrent clients against `python -m tfcharrnn.serve`: throughput and latency.

    python benchmarks/serve_load.py [--checkpoint_dir=RUN] [--clients=1,8,32] [--seconds=20]

Starts the server as a user would (its own process, a free loopback port) on RUN, or on a run
of the default model (`python -m tfcharrnn.train --model=lstm`, 2 x 256 LSTM) trained for one
step into a temporary directory: the weights do not change the speed. Then, for each number of
clients N, N clients each request 500 characters at a time over /v1/generate/stream (their own
seed per request) for --seconds, one request after another (--mode=bursts: all N at once,
then the next N when the last has ended), and prints per N: total generated
characters per second, the p50/p95 latency to the first chunk and to the end of a request, the
ratio of the total rate to one client's. Not a test: nothing here passes or fails. The
clients run in this process (asyncio over plain sockets, reading the stream as bytes).
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def default_run(directory: str) -> str:
    run_dir = os.path.join(directory, "lstm")
    subprocess.run([sys.executable, "-m", "tfcharrnn.train", "--model=lstm", "--max_steps=1",
                    "--eval_every=1", f"--checkpoint_dir={run_dir}"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return run_dir


async def request(host: str, port: int, body: dict):
    """One streamed generation over a fresh connection, read as bytes (a light client, so
    that it takes little of the CPU the server runs on): (seconds to the first chunk, to the
    end, whether the final event came)."""
    payload = json.dumps(body).encode()
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer.write(b"POST /v1/generate/stream HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (host.encode(), len(payload), payload))
    first, seen, done = None, b"", False
    while True:
        data = await reader.read(65536)
        if not data:
            break
        seen = seen[-16:] + data
        if first is None and b"event: chunk" in seen:
            first = time.perf_counter() - started
        done = done or b"event: done" in seen
    writer.close()
    return first, time.perf_counter() - started, done


async def client(host, port, results, deadline, length, seed):
    while time.perf_counter() < deadline:
        first, total, done = await request(host, port, {"length": length, "seed": seed})
        seed += 1000
        results.append((first, total, length if done else 0))


async def load(url, clients, seconds, length):
    """Sustained: each client requests again as soon as its request ends, for `seconds`."""
    host, port = url.split("//")[1].strip("/").split(":")
    results = []
    await request(host, int(port), {"length": 50})                  # warm up
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*[client(host, int(port), results, deadline, length, seed)
                           for seed in range(clients)])
    return results, time.perf_counter() - started


async def bursts(url, clients, seconds, length):
    """Bursts: all clients send one request at the same moment; the next burst starts when
    the last of them has ended; for `seconds`. The rate counts the bursts' wall time."""
    host, port = url.split("//")[1].strip("/").split(":")
    results = []
    await request(host, int(port), {"length": 50})                  # warm up
    started = time.perf_counter()
    seed = 0
    while time.perf_counter() < started + seconds:
        answers = await asyncio.gather(*[request(host, int(port), {"length": length,
                                                                  "seed": seed + i})
                                         for i in range(clients)])
        seed += clients
        results.extend((first, total, length if done else 0) for first, total, done in answers)
    return results, time.perf_counter() - started


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint_dir", default="")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--server_flag", action="append", default=[])
    parser.add_argument("--mode", choices=("sustained", "bursts"), default="sustained",
                        help="sustained: each client asks again as soon as it has its answer; "
                             "bursts: all clients ask at once, then wait for the last answer")
    args = parser.parse_args()
    from browser import ServerProcess
    import httpx
    counts = [int(n) for n in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.checkpoint_dir or default_run(tmp)
        server = ServerProcess(ROOT, f"--checkpoint_dir={run_dir}",
                               f"--max_batch={max(counts)}", *args.server_flag)
        try:
            facts = httpx.get(server.url + "v1/model").json()
            print(f"# {cpu_name()}; {facts['cell']} {facts['layers']} x {facts['units']}, "
                  f"{facts['precision']}; {args.length} characters per request, "
                  f"{args.seconds:.0f} s per row, {args.mode}")
            print("| clients | requests | total chars/s | x one client | first chunk p50 / p95 "
                  "| whole request p50 / p95 | samples per chunk |")
            print("|---|---|---|---|---|---|---|")
            single = None
            for n in counts:
                before = httpx.get(server.url + "healthz").json()
                run = load if args.mode == "sustained" else bursts
                results, wall = asyncio.run(run(server.url, n, args.seconds, args.length))
                after = httpx.get(server.url + "healthz").json()
                calls = after["chunks_run"] - before["chunks_run"]
                rows = (after["samples_per_chunk"] * after["chunks_run"]
                        - (before["samples_per_chunk"] or 0) * before["chunks_run"])
                # every request that ended counts; the rate is over the whole wall time
                rate = sum(r[2] for r in results) / wall
                single = single or rate
                firsts = [r[0] for r in results if r[0] is not None]
                totals = [r[1] for r in results]
                print(f"| {n} | {len(results)} | {rate:,.0f} | {rate / single:.1f}x | "
                      f"{percentile(firsts, .5) * 1000:.0f} / {percentile(firsts, .95) * 1000:.0f}"
                      f" ms | {percentile(totals, .5) * 1000:.0f} / "
                      f"{percentile(totals, .95) * 1000:.0f} ms | {rows / calls:.1f} |", flush=True)
        finally:
            server.stop()


def cpu_name() -> str:
    from cpu_hour import cpu_name as name
    return name()


if __name__ == "__main__":
    main()
