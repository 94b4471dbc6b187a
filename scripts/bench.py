#!/usr/bin/env python
"""`make bench`: our server side by side with the seed's tutorial chat (../shared/bench),
plus the replay, connections (scripts/bench_connections.py) and digest benchmarks.
Prints JSON lines; run from the repo root with the venv.

Uses its own database (`<name>_bench`), so benchmark rooms never mix with demo data.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
SHARED_BENCH = ROOT.parent / "shared" / "bench"
sys.path.insert(0, str(ROOT))

from scripts.support.ports import free_port, wait_port  # noqa: E402


def bench_database_url() -> str:
    u = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(u._replace(path=u.path.rstrip("/") + "_bench"))


def use_bench_redis() -> None:
    """Redis database 2, emptied: the bench database's user and room ids must not meet
    keys (rate windows, presence, revocation) written for another database's."""
    import redis

    u = urlparse(os.environ["REDIS_URL"])
    os.environ["REDIS_URL"] = urlunparse(u._replace(path="/2"))
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def setup_django(db_url: str) -> None:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def ensure_database(db_url: str) -> None:
    import psycopg

    u = urlparse(db_url)
    admin = urlunparse(u._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [u.path.lstrip("/")]).fetchone():
            conn.execute(f'CREATE DATABASE "{u.path.lstrip("/")}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0", "--noinput"], cwd=ROOT, check=True, env=os.environ)


def make_cookies(n: int, path: Path) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    User = get_user_model()
    lines = []
    for i in range(n):
        user, _ = User.objects.get_or_create(username=f"bench{i}")
        client = Client()
        client.force_login(user)
        lines.append(f"sessionid={client.cookies['sessionid'].value}")
    path.write_text("\n".join(lines) + "\n")


def bench_setup() -> None:
    """The bench's own database (migrated) and Redis database, and Django set up on them."""
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret")
    os.environ["DJANGO_DEBUG"] = "false"
    use_bench_redis()
    db_url = bench_database_url()
    os.environ["DATABASE_URL"] = db_url
    ensure_database(db_url)
    setup_django(db_url)


def start_server(port: int) -> subprocess.Popen:
    """Our server as the Procfile runs it (default log level and verbosity), on its own port.
    The benchmark measures fan-out: the per-user send limit would refuse its senders."""
    env = dict(os.environ, CHAT_RATE_LIMIT="1000000/1s")
    endpoint = f"tcp:port={port}:interface=127.0.0.1:backlog=4096"
    cmd = [sys.executable, "-m", "daphne", "-e", endpoint, "--websocket_timeout", "-1"]
    cmd += ["--websocket_connect_timeout", "30", "config.asgi:application"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc


def start_peer(port: int) -> subprocess.Popen:
    """The seed's tutorial chat (the peer), exactly as compare.py starts it, on its own port."""
    redis = urlparse(os.environ["REDIS_URL"])
    peer_dir = SHARED_BENCH / "peer_seed"
    env = dict(
        os.environ,
        REDIS_HOST=redis.hostname or "127.0.0.1",
        REDIS_PORT=str(redis.port or 6379),
        PEER_DB=f"/tmp/peer_seed_{port}.sqlite3",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=peer_dir, env=env, check=True)
    cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    proc = subprocess.Popen(cmd, cwd=peer_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc


def seeded_room(name: str, events: int) -> str:
    """A room holding exactly `events` messages, bulk-inserted once and kept."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from chat.services import room_join
    from events.models import Stream
    from scripts.support.bulk import bulk_append

    user, _ = get_user_model().objects.get_or_create(username="bench0")
    access = room_join(user=user, name=name)
    head = Stream.objects.get(id=access.stream_id).head
    if head < events:
        t0 = time.perf_counter()
        bulk_append(stream_id=access.stream_id, actor_id=user.pk, count=events - head, prefix="history ")
        print(f"seeded {name}: {events - head} events in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    with connection.cursor() as cur:
        cur.execute("ANALYZE events_event")
    return name


async def replay_times(base: str, room: str, cookie: str, n: int, history: int) -> list[float]:
    import websockets

    times = []
    origin = base.replace("ws://", "http://")
    for _ in range(n):
        t0 = time.perf_counter()
        async with websockets.connect(
            f"{base}/ws/chat/{room}/?history={history}",
            additional_headers={"Origin": origin, "Cookie": cookie},
            compression=None,
        ) as ws:
            count = 0
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "history.end":
                    break
                count += 1
            times.append((time.perf_counter() - t0) * 1000)
            assert count == history, count
    return times


# compare.py steps the rate by x1.41, so its ratios can only be 1.0, 1.41, 1.99...; this
# second sweep steps by x1.1 from the same start for peer and target, side by side.
FINE = {
    "fanout_1x50": ["--rooms", "1", "--clients", "50", "--senders", "1", "--start", "70"],
    "rooms_10x20x2": ["--rooms", "10", "--clients", "20", "--senders", "2", "--start", "5"],
}


def fine_sweeps(target: str, cookies: Path) -> None:
    port = free_port()
    peer = start_peer(port)
    try:
        for name, extra in FINE.items():
            best = {}
            for who, base, more in (
                ("peer", f"ws://127.0.0.1:{port}", []),
                ("target", target, ["--cookies", str(cookies)]),
            ):
                cmd = [sys.executable, str(SHARED_BENCH / "capacity.py"), "--factor", "1.1", "--base", base]
                out = subprocess.run(cmd + extra + more, capture_output=True, text=True, cwd=SHARED_BENCH)
                result = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
                best[who] = (result["best"] or {}).get("sustained_deliveries_per_s", 0)
            ratio = round(best["target"] / best["peer"], 2) if best["peer"] else None
            print(
                json.dumps(
                    {
                        "scenario": f"{name}_factor_1.1",
                        "peer_deliveries_per_s": best["peer"],
                        "target_deliveries_per_s": best["target"],
                        "ratio_target_over_peer": ratio,
                    }
                ),
                flush=True,
            )
    finally:
        peer.terminate()
        peer.wait(10)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))], 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--skip-replay", action="store_true")
    ap.add_argument("--skip-digest", action="store_true")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-fine", action="store_true")
    ap.add_argument("--skip-connections", action="store_true")
    # compare.py alternates peer and target this many times and keeps each one's best:
    # one noisy step on a shared 2-core machine then moves neither figure.
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scenarios", default="fanout_1x50,rooms_10x20x2", help="compare.py's scenarios")
    ap.add_argument("--replays", type=int, default=200)
    args = ap.parse_args()

    bench_setup()
    workdir = Path(tempfile.mkdtemp(prefix="chat-bench-"))
    cookies = workdir / "cookies.txt"
    make_cookies(50, cookies)

    port = free_port()
    server = start_server(port)
    try:
        base = f"ws://127.0.0.1:{port}"
        if not args.skip_compare:
            cmd = [
                sys.executable,
                str(SHARED_BENCH / "compare.py"),
                "--target",
                base,
                "--target-cookies",
                str(cookies),
                "--redis-url",
                os.environ["REDIS_URL"],
                "--rounds",
                str(args.rounds),
                "--scenarios",
                args.scenarios,
            ]
            subprocess.run(cmd, check=True)
        if not args.skip_fine:
            fine_sweeps(base, cookies)
        if not args.skip_replay:
            cookie = cookies.read_text().splitlines()[0]
            results = {}
            for events in (1_000, 1_000_000):
                room = seeded_room(f"replay-{events}", events)
                asyncio.run(replay_times(base, room, cookie, 10, 50))  # warm-up
                times = asyncio.run(replay_times(base, room, cookie, args.replays, 50))
                results[events] = times
                print(
                    json.dumps(
                        {
                            "scenario": f"replay_last50_room_{events}",
                            "connects": len(times),
                            "p50_ms": pct(times, 50),
                            "p99_ms": pct(times, 99),
                            "mean_ms": round(statistics.mean(times), 2),
                        }
                    ),
                    flush=True,
                )
            ratio = pct(results[1_000_000], 99) / pct(results[1_000], 99)
            print(json.dumps({"scenario": "replay_1M_over_1k_p99", "ratio": round(ratio, 2)}), flush=True)
    finally:
        server.terminate()
        server.wait(10)
    if not args.skip_connections:
        # Connections side by side with the peer: storms, big rooms, memory per socket, resume storm.
        subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_connections.py")], cwd=ROOT, check=True)
    if not args.skip_digest:
        # The digest projection over 1,000,000 events and 10,000 users (its own database).
        subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_digest.py")], cwd=ROOT, check=True)
    # ---- search (issue 13): 1,000,000 messages, latency per query kind, the index's
    # cost on the append; its own database (scripts/bench_search.py). ----
    if not args.skip_search:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_search.py")], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
