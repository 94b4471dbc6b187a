"""Benchmark of the daily digest: 1,000,000 events, 1,000 rooms, 10,000 users.

    DATABASE_URL=postgres://chat:chat@127.0.0.1:54329/chat .venv/bin/python scripts/bench_digest.py

Builds (or with --reuse, keeps) a separate database `chat_bench_digest` next to
DATABASE_URL's, fills it with bulk SQL (INSERT … SELECT generate_series, with the
event log's triggers and defaults in place), then runs the digest of that day
twice and prints one JSON line per run: wall time, peak memory (ru_maxrss),
emails queued. The second run must queue nothing. Target: < 60 s, memory flat
in the number of events (try --events 100000 vs the default).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "chat_bench_digest"
DAY = date(2026, 1, 15)


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _create_database(admin_url: str, name: str, *, reuse: bool) -> bool:
    """Create the bench database; False if it exists and is reused."""
    with psycopg.connect(_with_db(admin_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reuse:
            return False
        if exists:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return True


def bench_django(name: str, *, reuse: bool) -> tuple[str, bool]:
    """Create (or with `reuse` keep) the database `name` next to DATABASE_URL's,
    set Django up on it and migrate it: (DATABASE_URL's own URL, whether it was created)."""
    base_url = os.environ.get("DATABASE_URL", "postgres://chat:chat@127.0.0.1:54329/chat")
    created = _create_database(base_url, name, reuse=reuse)
    os.environ["DATABASE_URL"] = _with_db(base_url, name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)  # a reused database may be behind the code
    return base_url, created


def _fill(*, events: int, rooms: int, users: int, rooms_per_user: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from chat.digest import digest_window
    from chat.models import Membership, Room
    from events.models import Stream

    # Users, rooms and memberships through the ORM (bulk), so every column default of
    # those models applies; only the event log is filled with raw bulk SQL.
    User = get_user_model()
    users_table = User._meta.db_table
    start, _end = digest_window(DAY)
    per_room = events // rooms
    User.objects.bulk_create(
        [User(username=f"user{i}", email=f"user{i}@example.com", password="!") for i in range(1, users + 1)],
        batch_size=2000,
    )
    streams = Stream.objects.bulk_create([Stream(key=f"room:r{i}", head=per_room) for i in range(1, rooms + 1)])
    room_rows = Room.objects.bulk_create([Room(name=f"r{i}", stream=s) for i, s in enumerate(streams, 1)])
    user_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    # Each user in `rooms_per_user` rooms spread over the range.
    Membership.objects.bulk_create(
        [
            Membership(room=room_rows[(uid * 7 + k * 211) % rooms], user_id=uid)
            for uid in user_ids
            for k in range(rooms_per_user)
        ],
        batch_size=5000,
        ignore_conflicts=True,
    )
    with connection.cursor() as c:
        c.execute(f"SELECT min(id) FROM {users_table}")  # ids are consecutive in a fresh database
        first_user = c.fetchone()[0]
        # The events of the day, in time order, interleaved over the rooms; txid and
        # uuid come from the table's defaults, as for every real append. The hash
        # chain (events.verify) is not rebuilt here: `hash` is a placeholder, which
        # the digest never reads — do not run verify_log on the bench database.
        # In chunks of 100k rows, one short transaction each: a long one would hold back the
        # pg_snapshot_xmin horizon of every database on the cluster (and so their projections).
        total = per_room * rooms
        for low in range(1, total + 1, 100_000):
            c.execute(
                """INSERT INTO events_event (stream_id, seq, type, schema_version, data, actor_id, created_at,
                    content_hash, hash)
                SELECT x.stream_id, x.seq, 'chat.message.posted', 1, x.data, x.actor_id, x.created_at,
                       sha256(convert_to(x.data::text, 'UTF8')), sha256(convert_to(x.data::text, 'UTF8'))
                FROM (
                    SELECT s.id AS stream_id, (g - 1) / %(rooms)s + 1 AS seq,
                           jsonb_build_object('message', 'message ' || g || ' about topic ' || (g %% 97)
                                              || E'\\nwith a second line') AS data,
                           %(first_user)s + (g * 7919) %% %(users)s AS actor_id,
                           %(start)s::timestamptz + (g * (86399.0 / %(events)s)) * interval '1 second' AS created_at
                    FROM generate_series(%(low)s::bigint, %(high)s) g
                    JOIN events_stream s ON s.key = 'room:r' || (((g - 1) %% %(rooms)s) + 1)
                ) x""",
                {
                    "rooms": rooms,
                    "users": users,
                    "start": start,
                    "events": total,
                    "first_user": first_user,
                    "low": low,
                    "high": min(low + 99_999, total),
                },
            )
        c.execute("ANALYZE")


def _run(label: str) -> dict[str, object]:
    from chat.digest import digest_send

    started = time.perf_counter()
    report = digest_send(day=DAY)
    seconds = time.perf_counter() - started
    return {
        "bench": "digest",
        "run": label,
        "day": DAY.isoformat(),
        "rooms": report.rooms,
        "users": report.users,
        "emails_queued": report.queued,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=1_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rooms-per-user", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep an existing bench database and its data")
    args = parser.parse_args()

    base_url, created = bench_django(BENCH_DB, reuse=args.reuse)
    if created:
        started = time.perf_counter()
        _fill(events=args.events, rooms=args.rooms, users=args.users, rooms_per_user=args.rooms_per_user)
        fill = {"bench": "digest", "run": "fill", "events": args.events, "seconds": time.perf_counter() - started}
        print(json.dumps({**fill, "seconds": round(float(fill["seconds"]), 2)}), flush=True)
        # Measure in a fresh process, so the peak memory is the digest's and not the fill's.
        env = {**os.environ, "DATABASE_URL": base_url}
        sys.exit(subprocess.run([sys.executable, __file__, "--reuse"], env=env, check=False).returncode)
    else:
        from notifications.models import OutboxEmail

        OutboxEmail.objects.filter(kind="digest", key=DAY.isoformat()).delete()  # a fresh first run

    first = _run("first")
    print(json.dumps(first), flush=True)
    second = _run("second (same day: nothing to do)")
    print(json.dumps(second), flush=True)
    if second["emails_queued"] != 0:
        sys.exit("the second run queued emails again")


if __name__ == "__main__":
    main()
