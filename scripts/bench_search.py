"""Benchmark of search: 1,000,000 messages in 1,000 rooms, English and Japanese.

    DATABASE_URL=postgres://chat:chat@127.0.0.1:54329/chat .venv/bin/python scripts/bench_search.py

Builds (or with --reuse, keeps) a separate database `chat_bench_search` next to
DATABASE_URL's. The messages are generated in Python — English sentences drawn
from a Zipf-weighted vocabulary, Japanese sentences from common phrases, some
mixing both — and appended server-side through a hash-chained bulk append (the
append statement's rules: gapless seq, content hash, the stream's chain),
interleaved over the rooms in time order. The search indexes are dropped during
the fill and built after it (timed).

Then, through `chat.search.messages_search` as /api/search runs it, p50/p99 of:
a 3+ character English word, a 2-character Japanese word, a word in one room, a
word with no hits (each cycling over several words; their hit counts printed).
Last, the index's cost on the append: `event_append` of realistic messages with
the search indexes and without them (dropped, then rebuilt). Prints JSON lines.
Targets: p99 ≤ 100 ms (3+ characters, one room), ≤ 300 ms (2 characters);
the indexes add ≤ 25 % to the append.
"""

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_digest import bench_django  # noqa: E402

BENCH_DB = "chat_bench_search"
START = datetime(2026, 9, 1, tzinfo=UTC)

# Function words first (they dominate any chat), then the words a team talks about.
ENGLISH = (
    "the to a and I is it you that for we of in on this be have can do not just are so what with "
    "but if will at was my me about get like ok yes no there they think one now all how up out "
    "know need please thanks sure let's an or your our from as by would could should did done go "
    "going today tomorrow yesterday morning afternoon week next last time again still also here "
    "release deploy build test tests review merge branch commit issue bug fix patch ticket sprint "
    "meeting standup demo slides notes agenda calendar invite lunch coffee break weekend holiday "
    "customer client contract invoice budget report metrics dashboard chart numbers growth revenue "
    "server database backup migration schema index query latency outage incident alert pager "
    "design mockup feedback copy launch roadmap priority deadline estimate scope blocker dependency "
    "docs readme wiki onboarding laptop password access account login token permission config "
    "staging production rollback hotfix version changelog pipeline runner docker cluster memory "
    "python javascript django frontend backend api endpoint request response payload timeout retry "
    "question answer idea plan proposal decision summary update status progress risk owner team "
    "hiring interview candidate offer manager lead engineer designer support sales marketing legal "
    "travel flight hotel visa conference talk workshop training course book article podcast video "
    "weather rain snow sunny office remote home kitchen printer coffee snacks birthday party cake "
    "friday monday tuesday wednesday thursday saturday sunday january february march april june "
    "quarterly annual monthly weekly daily hourly urgent important minor major critical trivial "
    "happy great awesome nice cool thanks sorry great job well done agreed interesting weird strange"
).split()
JAPANESE = (
    "会議 雑談 資料 確認 予定 明日 今日 昨日 対応 共有 連絡 報告 相談 質問 回答 修正 変更 追加 削除 "
    "リリース デプロイ テスト レビュー 打ち合わせ 議事録 お疲れ様です よろしくお願いします ありがとうございます "
    "了解です 承知しました 少々お待ちください 確認します 後ほど 午前中 午後 来週 今週 先週 月曜日 金曜日 "
    "お客様 見積もり 請求書 契約 予算 売上 目標 進捗 課題 障害 復旧 調査 原因 対策 手順 設定 環境 本番 検証 "
    "サーバー データベース バックアップ ログ エラー 不具合 仕様 設計 開発 実装 運用 保守 資料作成 勉強会 "
    "ランチ 休憩 出張 在宅 出社 休み 有給 懇親会 飲み会 天気 東京 大阪 新幹線"
).split()
PARTICLES = "は が を に で と の も へ から まで より".split()
ENDINGS = ["。", "です。", "ます。", "でしょうか?", "ですね。", "！", "", "ください。", "しました。"]
# What the benchmark looks for (each list cycled over its queries).
WORDS_3PLUS = ["release", "deploy", "migration", "invoice", "dashboard", "rollback", "workshop", "candidate"]
WORDS_2CHAR = ["会議", "雑談", "資料", "確認", "予定", "対応", "共有", "連絡"]
WORDS_NONE = ["zqxvbnm", "qqqzzzx", "xkcdzzq", "wvvqqxz"]


class Texts:
    """Messages a team would write: 65 % English, 30 % Japanese, 5 % both."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # Zipf: the n-th word of the list is 1/n as likely as the first.
        self.en_weights = [1 / (n + 1) for n in range(len(ENGLISH))]
        self.ja_weights = [1 / (n + 1) ** 0.7 for n in range(len(JAPANESE))]

    def english(self) -> str:
        words = self.rng.choices(ENGLISH, self.en_weights, k=self.rng.randint(3, 16))
        return " ".join(words).capitalize() + self.rng.choice([".", "!", "?", "", " :)"])

    def japanese(self) -> str:
        parts = []
        for _ in range(self.rng.randint(1, 4)):
            parts.append(self.rng.choices(JAPANESE, self.ja_weights)[0] + self.rng.choice(PARTICLES))
        return "".join(parts) + self.rng.choices(JAPANESE, self.ja_weights)[0] + self.rng.choice(ENDINGS)

    def __call__(self) -> str:
        roll = self.rng.random()
        if roll < 0.65:
            return self.english()
        if roll < 0.95:
            return self.japanese()
        return f"{self.english()} {self.japanese()}"


_BULK = """
CREATE OR REPLACE FUNCTION pg_temp.bench_append(streams bigint[], actors bigint[], texts text[], ts timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    seq bigint; chained bytea; payload jsonb; ch bytea;
BEGIN
    FOR i IN 1..array_length(streams, 1) LOOP
        payload := jsonb_build_object('message', texts[i]);
        ch := sha256(convert_to(payload::text, 'UTF8'));
        -- The head moves and the chain grows by one link in one statement, as in the append.
        UPDATE events_stream SET head = head + 1,
            head_hash = events_chain_hash(head_hash, head + 1, 'chat.message.posted', 1, actors[i], NULL, ts[i], ch)
        WHERE id = streams[i] RETURNING head, head_hash INTO seq, chained;
        INSERT INTO events_event (stream_id, seq, uuid, type, schema_version, data, actor_id, created_at,
                                  content_hash, hash)
        VALUES (streams[i], seq, gen_random_uuid(), 'chat.message.posted', 1, payload, actors[i], ts[i], ch, chained);
    END LOOP;
END;
$$;
"""


def _search_indexes(cursor) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The search indexes on the event log as the migrations made them: name → definition."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events_event' AND indexname LIKE 'chat_search_%'"
    )
    return dict(cursor.fetchall())


def _drop(cursor, indexes: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    for name in indexes:
        cursor.execute(f"DROP INDEX IF EXISTS {name}")


def _build(cursor, indexes: dict[str, str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    seconds = {}
    cursor.execute("SET maintenance_work_mem = '256MB'")
    for name, sql in indexes.items():
        started = time.perf_counter()
        cursor.execute(sql)
        seconds[name] = round(time.perf_counter() - started, 1)
    # Statistics of the index expressions go with the dropped index: the planner needs them back.
    cursor.execute("ANALYZE events_event")
    return seconds


def _fill(*, messages: int, rooms: int, users: int, private_share: float) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from chat.models import Membership, Room
    from events.models import Stream

    User = get_user_model()
    rng = random.Random(7)
    User.objects.bulk_create([User(username=f"user{i}", password="!") for i in range(1, users + 1)], batch_size=2000)
    user_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    streams = Stream.objects.bulk_create([Stream(key=f"room:r{i}") for i in range(1, rooms + 1)])
    room_rows = Room.objects.bulk_create(
        [Room(name=f"r{i}", stream=s, is_private=rng.random() < private_share) for i, s in enumerate(streams, 1)]
    )
    Membership.objects.bulk_create(
        [Membership(room=room, user_id=uid) for room in room_rows for uid in rng.sample(user_ids, 20)],
        batch_size=5000,
        ignore_conflicts=True,
    )
    stream_ids = [s.pk for s in streams]
    texts = Texts(seed=1)
    step = timedelta(days=90) / messages
    with connection.cursor() as cursor:
        indexes = _search_indexes(cursor)
        assert indexes, "the search indexes are missing: migrate first"
        _drop(cursor, indexes)
        cursor.execute(_BULK)
        batch = 10_000
        for low in range(0, messages, batch):
            n = min(batch, messages - low)
            # Busy rooms and quiet ones, interleaved in time order as a real log is.
            picked = [stream_ids[min(int(rng.paretovariate(1.2)) - 1, rooms - 1) % rooms] for _ in range(n // 2)]
            picked += [rng.choice(stream_ids) for _ in range(n - len(picked))]
            rng.shuffle(picked)
            with transaction.atomic():
                cursor.execute(
                    "SELECT pg_temp.bench_append(%s, %s, %s, %s)",
                    [
                        picked,
                        [rng.choice(user_ids) for _ in range(n)],
                        [texts() for _ in range(n)],
                        [START + step * (low + i) for i in range(n)],
                    ],
                )
        started = time.perf_counter()
        built = _build(cursor, indexes)
        cursor.execute("VACUUM events_event")
        total = round(time.perf_counter() - started, 1)
        print(json.dumps({"bench": "search", "run": "index build", "seconds": built, "total": total}), flush=True)


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2)


def _hits(word: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM events_event WHERE type = 'chat.message.posted' AND data ->> 'message' ILIKE %s",
            [f"%{word}%"],
        )
        return int(cursor.fetchone()[0])


def _latency(name: str, words: list[str], *, runs: int, user_id: int, rooms: list[str] | None = None) -> None:
    from chat.search import SearchQuery, messages_search, search_terms

    times: list[float] = []
    counts: list[int] = []
    for i in range(runs + len(words)):  # the first pass over the words warms the cache
        word = words[i % len(words)]
        room = rooms[i % len(rooms)] if rooms else None
        query = SearchQuery(terms=search_terms(word), room=room, limit=20)
        started = time.perf_counter()
        results = messages_search(user_id=user_id, query=query)
        if i >= len(words):
            times.append((time.perf_counter() - started) * 1000)
            counts.append(len(results.hits))
    line = {
        "bench": "search",
        "query": name,
        "runs": len(times),
        "p50_ms": _pct(times, 50),
        "p99_ms": _pct(times, 99),
        "mean_ms": round(statistics.mean(times), 2),
        "results_per_page": round(statistics.mean(counts), 1),
        "words": {w: _hits(w) for w in words} if not rooms else words,
    }
    print(json.dumps(line, ensure_ascii=False), flush=True)


def _appends(label: str, *, count: int, stream_ids: list[int], user_id: int, durable: bool) -> tuple[float, float]:
    """Mean and median ms per append of `count` realistic messages, one at a time in autocommit
    with the prepared append statement, as message_post does. `durable=False`
    leaves out the wait for the WAL flush (synchronous_commit off, this session
    only): the statement's own work, which is what an index adds to, without the
    shared disk's noise."""
    from django.db import connection

    from events.services import event_append

    texts = Texts(seed=99)
    rng = random.Random(5)
    times = []
    with connection.cursor() as cursor:
        cursor.execute(f"SET synchronous_commit = {'on' if durable else 'off'}")
    for _ in range(count):
        stream = rng.choice(stream_ids)
        text = texts()
        started = time.perf_counter()
        event_append(stream_id=stream, type="chat.message.posted", data={"message": text}, actor_id=user_id)
        times.append((time.perf_counter() - started) * 1000)
    with connection.cursor() as cursor:
        cursor.execute("RESET synchronous_commit")
    line = {
        "bench": "search",
        "run": f"append {label}, {'committed to disk' if durable else 'statement only'}",
        "appends": count,
        "mean_ms": round(statistics.mean(times), 3),
        "p50_ms": _pct(times, 50),
        "p99_ms": _pct(times, 99),
    }
    print(json.dumps(line), flush=True)
    return float(line["mean_ms"]), float(line["p50_ms"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rooms", type=int, default=1_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--private-share", type=float, default=0.1, help="share of private rooms")
    parser.add_argument("--runs", type=int, default=200, help="searches per query kind")
    parser.add_argument("--appends", type=int, default=1000, help="appends per round and mode of the append cost")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the append cost (with, then without)")
    parser.add_argument("--reuse", action="store_true", help="keep an existing bench database and its data")
    args = parser.parse_args()

    _, created = bench_django(BENCH_DB, reuse=args.reuse)
    if created:
        started = time.perf_counter()
        _fill(messages=args.messages, rooms=args.rooms, users=args.users, private_share=args.private_share)
        fill = {"bench": "search", "run": "fill", "messages": args.messages, "rooms": args.rooms}
        print(json.dumps({**fill, "seconds": round(time.perf_counter() - started, 1)}), flush=True)

    from django.contrib.auth import get_user_model
    from django.db import connection

    from chat.models import Membership, Room

    # A reader who belongs to some private rooms: the permission filter is real work.
    user_id = Membership.objects.filter(room__is_private=True).values_list("user_id", flat=True).first()
    user_id = user_id or get_user_model().objects.values_list("pk", flat=True).first()
    assert user_id is not None, "no users in the bench database"
    busy = list(Room.objects.filter(is_private=False).order_by("-stream__head").values_list("name", flat=True)[:50])
    _latency("3+ characters (English word)", WORDS_3PLUS, runs=args.runs, user_id=user_id)
    _latency("2 characters (Japanese word)", WORDS_2CHAR, runs=args.runs, user_id=user_id)
    _latency("3+ characters in one room", WORDS_3PLUS, runs=args.runs, user_id=user_id, rooms=busy)
    _latency("no hits", WORDS_NONE, runs=args.runs, user_id=user_id)

    # The append with and without the indexes, alternated (the indexes dropped and
    # rebuilt between rounds) so that a noisy neighbour weighs on both sides.
    stream_ids = list(Room.objects.filter(name__in=busy).values_list("stream_id", flat=True))
    _appends("warm-up", count=min(500, args.appends), stream_ids=stream_ids, user_id=user_id, durable=True)
    means: dict[tuple[bool, bool], list[tuple[float, float]]] = {}
    with connection.cursor() as cursor:
        indexes = _search_indexes(cursor)
    for round_ in range(1, args.rounds + 1):
        for indexed in (True, False):
            label = f"{'with' if indexed else 'without'} search indexes, round {round_}"
            for durable in (True, False):
                times = _appends(label, count=args.appends, stream_ids=stream_ids, user_id=user_id, durable=durable)
                means.setdefault((indexed, durable), []).append(times)
            with connection.cursor() as cursor:
                if indexed:
                    _drop(cursor, indexes)
                else:
                    _build(cursor, indexes)
    line: dict[str, object] = {"bench": "search", "run": "append cost of the search indexes"}
    for durable, name in ((True, "committed to disk"), (False, "statement only")):
        figures: dict[str, float] = {}
        for n, kind in enumerate(("mean", "p50")):
            with_index = statistics.mean(t[n] for t in means[True, durable])
            without = statistics.mean(t[n] for t in means[False, durable])
            figures[f"{kind}_with_ms"] = round(with_index, 3)
            figures[f"{kind}_without_ms"] = round(without, 3)
            figures[f"{kind}_percent"] = round((with_index - without) / without * 100, 1)
        line[name] = figures
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
