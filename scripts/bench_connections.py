#!/usr/bin/env python
"""`make bench`, connections: our server side by side with the seed's tutorial chat
(../shared/bench/peer_seed), one daphne process each, started here the same way as
in production (our Procfile's flags; the peer exactly as compare.py starts it).

For each layout (N sockets in one room; N sockets over N/10 rooms), with
`--at-once` sockets connecting at any moment, it prints one JSON line per server:
sockets opened out of N, connects per second, p50/p99 from TCP connect to
`history.end` (to the open handshake for the peer, which sends no history), KiB
of server RSS per idle socket, and for the one-room layout the time for one
message to reach every socket. Then, ours only: a resume storm (`--storm`
sockets reconnecting at once, each with its own `since=` into a room of
`--storm-events` events; every one must get exactly its missing events), and
single connects to a quiet room with 50 events of history (p50/p99).

    DATABASE_URL=… REDIS_URL=… .venv/bin/python scripts/bench_connections.py [--sockets 10000]
"""

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import bench_setup, pct, seeded_room, start_peer
from bench import start_server as start_ours

from scripts.support.ports import free_port


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def create_rooms(tag: str, rooms: int) -> None:
    """A company's rooms exist before its people reconnect: create them first, so the
    storm measures joins, not room creation (the peer creates nothing)."""
    from django.contrib.auth import get_user_model

    from chat.services import room_join

    owner, _ = get_user_model().objects.get_or_create(username="bench0")
    for i in range(rooms):
        room_join(user=owner, name=f"{tag}_{i}")


class Watch:
    """Counts the sockets a broadcast marker has reached; `done` is set when all have."""

    marker = ""
    left = 0
    done: asyncio.Event | None = None


class Client:
    """One socket: opens, reads until `history.end` (ours) or the handshake (peer), then drains."""

    def __init__(self, url: str, headers: dict[str, str], history: bool) -> None:
        self.url, self.headers, self.history = url, headers, history
        self.ws = None
        self.seqs: list[int] = []
        self.seen: dict[str, float] = {}
        self.reader: asyncio.Task | None = None
        self.closed_code: int | None = None

    async def open(self) -> float:
        import websockets

        t0 = time.perf_counter()
        self.ws = await websockets.connect(
            self.url, additional_headers=self.headers, compression=None, open_timeout=120, ping_interval=None
        )
        if self.history:
            while True:
                frame = json.loads(await self.ws.recv())
                if frame.get("type") == "history.end":
                    break
                if "seq" in frame:
                    self.seqs.append(frame["seq"])
        took = time.perf_counter() - t0
        self.reader = asyncio.create_task(self._drain())
        return took

    async def _drain(self) -> None:
        try:
            async for raw in self.ws:
                if Watch.marker and Watch.marker in raw and Watch.marker not in self.seen:
                    self.seen[Watch.marker] = time.perf_counter()
                    Watch.left -= 1
                    if Watch.left == 0 and Watch.done is not None:
                        Watch.done.set()
        except Exception:
            pass
        self.closed_code = self.ws.close_code

    async def close(self) -> None:
        if self.reader:
            self.reader.cancel()
        if self.ws:
            await self.ws.close()


async def open_all(clients: list[Client], at_once: int) -> tuple[list[float], Counter, float]:
    gate = asyncio.Semaphore(at_once)
    times: list[float] = []
    failures: Counter = Counter()

    async def one(client: Client) -> None:
        async with gate:
            try:
                times.append(await client.open())
            except Exception as exc:
                failures[type(exc).__name__ + ":" + str(exc)[:60]] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in clients))
    return times, failures, time.perf_counter() - t0


async def layout(
    who: str, base: str, pid: int, cookies: list[str], *, sockets: int, per_room: int, at_once: int, tag: str
) -> dict:
    origin = base.replace("ws://", "http://")
    rooms = max(1, sockets // per_room)
    clients = []
    for i in range(sockets):
        room = f"{tag}_{i % rooms}"
        headers = {"Origin": origin}
        if who == "ours":
            headers["Cookie"] = cookies[i % len(cookies)]
        clients.append(Client(f"{base}/ws/chat/{room}/", headers, history=(who == "ours")))
    # Warm the process up (imports, pools), then measure from there.
    warm = [Client(f"{base}/ws/chat/{tag}_warm/", clients[0].headers, history=(who == "ours")) for _ in range(20)]
    await open_all(warm, 20)
    for c in warm:
        await c.close()
    await asyncio.sleep(1)
    before = rss_kib(pid)
    times, failures, wall = await open_all(clients, at_once)
    await asyncio.sleep(3)
    after = rss_kib(pid)
    alive = [c for c in clients if c.ws is not None and c.closed_code is None and c.reader and not c.reader.done()]
    result = {
        "scenario": f"connections_{sockets}_{'one_room' if rooms == 1 else f'{rooms}_rooms'}",
        "server": who,
        "opened": len(times),
        "of": sockets,
        "alive_after_3s": len(alive),
        "failures": dict(failures.most_common(5)),
        "connects_per_s": round(len(times) / wall, 1),
        "connect_to_ready_p50_ms": pct([t * 1000 for t in times], 50) if times else None,
        "connect_to_ready_p99_ms": pct([t * 1000 for t in times], 99) if times else None,
        "kib_per_idle_socket": round((after - before) / max(len(alive), 1), 1),
    }
    if rooms == 1 and alive:
        # Once the storm has settled (its last presence frames went out), three messages
        # one after the other: the time until every socket has each.
        await asyncio.sleep(12)
        alive = [c for c in alive if c.closed_code is None and c.reader is not None and not c.reader.done()]
        result["alive_after_15s"] = len(alive)
        took: list[float | None] = []
        reached: list[int] = []
        for k in range(3 if alive else 0):
            marker = f"bench-{random.getrandbits(40):x}-{k}"
            Watch.marker, Watch.left, Watch.done = marker, len(alive), asyncio.Event()
            t0 = time.perf_counter()
            await alive[0].ws.send(json.dumps({"message": marker}))
            try:
                await asyncio.wait_for(Watch.done.wait(), 30)
            except TimeoutError:
                pass
            got = [c.seen[marker] - t0 for c in alive if marker in c.seen]
            reached.append(len(got))
            took.append(round(max(got) * 1000, 1) if len(got) == len(alive) else None)
            await asyncio.sleep(1)
        result["broadcast_reached"] = reached
        result["broadcast_all_ms"] = took
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return result


async def resume_storm(base: str, cookies: list[str], *, room: str, head: int, sockets: int, at_once: int) -> dict:
    origin = base.replace("ws://", "http://")
    rng = random.Random(7)
    clients, since = [], []
    for i in range(sockets):
        s = head - rng.randint(0, 100)
        since.append(s)
        headers = {"Origin": origin, "Cookie": cookies[i % len(cookies)]}
        clients.append(Client(f"{base}/ws/chat/{room}/?since={s}", headers, history=True))
    times, failures, wall = await open_all(clients, at_once)
    exact = sum(c.seqs == list(range(s + 1, head + 1)) for c, s in zip(clients, since, strict=True))
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return {
        "scenario": f"resume_storm_{sockets}_into_{head}_events",
        "server": "ours",
        "opened": len(times),
        "of": sockets,
        "exact_replays": exact,
        "failures": dict(failures.most_common(5)),
        "wall_s": round(wall, 2),
        "to_history_end_p50_ms": pct([t * 1000 for t in times], 50) if times else None,
        "to_history_end_p99_ms": pct([t * 1000 for t in times], 99) if times else None,
    }


async def quiet_connects(base: str, cookie: str, room: str, n: int) -> dict:
    origin = base.replace("ws://", "http://")
    times = []
    for _ in range(n + 10):
        client = Client(f"{base}/ws/chat/{room}/?history=50", {"Origin": origin, "Cookie": cookie}, history=True)
        took = await client.open()
        assert len(client.seqs) == 50, len(client.seqs)
        times.append(took * 1000)
        await client.close()
    times = times[10:]  # the first ten warm up
    return {"scenario": "quiet_connect_last50", "server": "ours", "p50_ms": pct(times, 50), "p99_ms": pct(times, 99)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sockets", type=int, default=10_000)
    ap.add_argument("--at-once", type=int, default=200)
    ap.add_argument("--storm", type=int, default=5_000)
    ap.add_argument("--storm-events", type=int, default=100_000)
    ap.add_argument("--quiet", type=int, default=200)
    ap.add_argument("--only", default="layouts,storm,quiet")
    args = ap.parse_args()
    raise_fd_limit()
    bench_setup()
    from scripts.support.sessions import signed_in_cookies

    cookies = signed_in_cookies("conn", args.sockets)
    only = set(args.only.split(","))
    run = f"{int(time.time()) % 100000}"
    ours = None
    try:
        if "layouts" in only:
            # Fresh processes for each layout, so each one's memory is its own.
            for per_room in (args.sockets, 10):
                for who, start in (("peer", start_peer), ("ours", start_ours)):
                    if who == "ours" and per_room < args.sockets:
                        create_rooms(f"c{run}_{per_room}", args.sockets // per_room)
                    port = free_port()
                    proc = start(port)
                    try:
                        result = asyncio.run(
                            layout(
                                who,
                                f"ws://127.0.0.1:{port}",
                                proc.pid,
                                cookies,
                                sockets=args.sockets,
                                per_room=per_room,
                                at_once=args.at_once,
                                tag=f"c{run}_{per_room}",
                            )
                        )
                    finally:
                        proc.terminate()
                        proc.wait(10)
                    print(json.dumps(result), flush=True)
        ours_port = free_port()
        ours = start_ours(ours_port)
        if "storm" in only:
            room = seeded_room(f"storm-{args.storm_events}", args.storm_events)
            result = asyncio.run(
                resume_storm(
                    f"ws://127.0.0.1:{ours_port}",
                    cookies,
                    room=room,
                    head=args.storm_events,
                    sockets=args.storm,
                    at_once=args.storm,
                )
            )
            print(json.dumps(result), flush=True)
        if "quiet" in only:
            room = seeded_room("replay-1000", 1_000)
            print(json.dumps(asyncio.run(quiet_connects(f"ws://127.0.0.1:{ours_port}", cookies[0], room, args.quiet))))
    finally:
        if ours is not None:
            ours.terminate()
            ours.wait(10)


if __name__ == "__main__":
    main()
