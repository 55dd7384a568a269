"""Asks one backing service a real question and says whether it answered.

Exit status 0 means the service answered; anything else prints why it did not, on one line.
A port that is merely open is not enough: a half-started MariaDB or RabbitMQ accepts TCP
connections long before it can serve a query or finish an AMQP handshake.
"""

import argparse
import socket
import sys
import urllib.request

TIMEOUT = 3.0


def mysql(args):
    import pymysql

    conn = pymysql.connect(
        host="127.0.0.1",
        port=args.port,
        user=args.user,
        password=args.password,
        connect_timeout=TIMEOUT,
        read_timeout=TIMEOUT,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            if cur.fetchone() != (1,):
                raise RuntimeError("SELECT 1 returned something else")
    finally:
        conn.close()


def amqp(args):
    import pika

    params = pika.ConnectionParameters(
        host="127.0.0.1",
        port=args.port,
        credentials=pika.PlainCredentials("guest", "guest"),
        socket_timeout=TIMEOUT,
        blocked_connection_timeout=TIMEOUT,
        connection_attempts=1,
    )
    conn = pika.BlockingConnection(params)
    try:
        conn.channel().close()
    finally:
        conn.close()


def redis(args):
    import redis as redis_client

    # The URL carries the admin user and password: Redis's default user is disabled.
    client = redis_client.Redis.from_url(args.url, socket_timeout=TIMEOUT)
    if not client.ping():
        raise RuntimeError("PING did not return PONG")


def mongo(args):
    import pymongo

    client = pymongo.MongoClient(
        host="127.0.0.1",
        port=args.port,
        directConnection=True,
        serverSelectionTimeoutMS=int(TIMEOUT * 1000),
    )
    try:
        reply = client.admin.command("hello")
        if not reply.get("ok"):
            raise RuntimeError(f"hello answered {reply!r}")
    finally:
        client.close()


def http(args):
    with urllib.request.urlopen(args.url, timeout=TIMEOUT) as response:
        if response.status != 200:
            raise RuntimeError(f"GET {args.url} answered {response.status}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="service", required=True)
    p = sub.add_parser("mysql")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.set_defaults(run=mysql)
    for name, run in (("amqp", amqp), ("mongo", mongo)):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, required=True)
        p.set_defaults(run=run)
    p = sub.add_parser("redis")
    p.add_argument("--url", required=True)
    p.set_defaults(run=redis)
    p = sub.add_parser("http")
    p.add_argument("url")
    p.set_defaults(run=http)
    args = parser.parse_args()
    socket.setdefaulttimeout(TIMEOUT)
    try:
        args.run(args)
    except Exception as exc:  # the reason is the whole point of this program
        detail = str(exc).strip() or repr(exc)
        # Driver messages can run to pages (pymongo prints its whole topology); the first line says it.
        print(f"{type(exc).__name__}: {detail.splitlines()[0][:200]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
