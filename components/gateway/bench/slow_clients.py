#!/usr/bin/env python3
"""Slow clients and a normal user, for components/gateway/bench/edge.sh (numbers, not a test).

  slow_clients.py attack HOST:PORT --clients N --seconds S [--addresses A]
      N clients (a third of each kind) from A loopback addresses 127.0.0.101.., each reconnecting as
      soon as it is cut off, for S seconds, then a count of what they got:
        silent   connect and send nothing
        headers  send a request's head a byte a second
        body     send a sign-up's head, then its 16 KB JSON body a byte a second (what
                 `curl --limit-rate 1 -d @16k.json .../api/v1/users` sends)
  slow_clients.py measure BASE --email E --password P --job ID --samples K
      K times, one after the other, a log-in (POST /api/v1/sessions) then that job's status
      (GET /api/v1/jobs/ID) as a new client would: the time of each pair, in ms, one a line.
"""

import argparse
import asyncio
import http.client
import json
import signal as signal_module
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


async def one_attempt(kind, source, host, port, outcomes, open_now):
    try:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    except OSError as e:
        outcomes[f"connect failed ({e.strerror})"] += 1
        await asyncio.sleep(1)
        return
    open_now[kind] += 1
    try:
        await hold(kind, host, port, reader, writer, outcomes)
    finally:
        open_now[kind] -= 1


async def hold(kind, host, port, reader, writer, outcomes):
    head = (
        f"POST /api/v1/users HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 16384\r\n\r\n"
    ).encode()

    async def trickle():
        try:
            if kind == "headers":
                for i in range(len(head)):
                    writer.write(head[i : i + 1])
                    await writer.drain()
                    await asyncio.sleep(1)
            elif kind == "body":
                writer.write(head + b"{")
                await writer.drain()
                while True:
                    await asyncio.sleep(1)
                    writer.write(b" ")
                    await writer.drain()
            else:
                await asyncio.Event().wait()
        except (OSError, ConnectionError):
            pass

    sender = asyncio.create_task(trickle())
    try:
        answer = await reader.read(200)
    except (OSError, ConnectionError):
        answer = b""
    sender.cancel()
    writer.close()
    if answer.startswith(b"HTTP/1.1 "):
        outcomes[f"{kind}: {answer[9:12].decode()}"] += 1
    else:
        outcomes[f"{kind}: closed"] += 1
    if answer.startswith(b"HTTP/1.1 503"):
        await asyncio.sleep(1)  # Retry-After: 1


async def attack(args):
    host, port = args.target.rsplit(":", 1)
    port = int(port)
    outcomes = Counter()
    open_now = Counter()
    kinds = ["silent", "headers", "body"]
    deadline = time.monotonic() + args.seconds

    async def client(i):
        kind = kinds[i % 3]
        source = f"127.0.0.{101 + i % args.addresses}"
        while time.monotonic() < deadline:
            await one_attempt(kind, source, host, port, outcomes, open_now)

    tasks = [asyncio.create_task(client(i)) for i in range(args.clients)]
    stop = asyncio.Event()
    for signal in (signal_module.SIGINT, signal_module.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signal, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.seconds)
    except asyncio.TimeoutError:
        pass
    held = ", ".join(f"{k} {open_now[k]}" for k in kinds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"slow clients holding a connection at the end: {held}", flush=True)
    print(
        "what ended their attempts: "
        + (", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())) or "nothing yet"),
        flush=True,
    )


def measure(args):
    """Prints each pair's time; a pair refused with 503 is counted on stderr, not timed."""
    url = urlsplit(args.base)
    body = json.dumps({"email": args.email, "password": args.password})
    refused = 0
    for _ in range(args.samples):
        started = time.perf_counter()
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.request("POST", "/api/v1/sessions", body, {"content-type": "application/json"})
        r = conn.getresponse()
        session = r.read()
        conn.close()
        if r.status == 503:
            refused += 1
            continue
        if r.status != 200:
            sys.exit(f"log-in answered {r.status}: {session[:200]!r}")
        token = json.loads(session)["token"]
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.request("GET", f"/api/v1/jobs/{args.job}", headers={"authorization": f"Bearer {token}"})
        r = conn.getresponse()
        status = r.read()
        conn.close()
        if r.status == 503:
            refused += 1
            continue
        if r.status != 200:
            sys.exit(f"job status answered {r.status}: {status[:200]!r}")
        print(f"{(time.perf_counter() - started) * 1e3:.1f}", flush=True)
    print(f"refused with 503: {refused} of {args.samples} pairs", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("attack")
    a.add_argument("target")
    a.add_argument("--clients", type=int, default=300)
    a.add_argument("--seconds", type=float, default=60)
    a.add_argument("--addresses", type=int, default=10)
    m = sub.add_parser("measure")
    m.add_argument("base")
    m.add_argument("--email", required=True)
    m.add_argument("--password", required=True)
    m.add_argument("--job", required=True)
    m.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    if args.command == "attack":
        asyncio.run(attack(args))
    else:
        measure(args)


if __name__ == "__main__":
    main()
