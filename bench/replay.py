#!/usr/bin/python3
"""bench/replay.py: the next-item replay of BENCH.md ("Quality: next-item replay").

Run with /usr/bin/python3 (needs python3-psycopg2) against a database that has
CREATE EXTENSION rtrec and nothing else loaded; bench/replay.sh does that on a
throwaway cluster.

  1. Reads a CSV user_id,item_id,category_id,event_type,ts (ts in unix seconds),
     optionally keeps only --window lo:hi (lo <= ts < hi), sorts it by ts
     (stable) and splits at T, the ts of the event at the 80th percentile
     (index floor(0.8 * n) of the sorted events).
  2. Loads rtrec.event_types (--weights), rtrec.config (--settings), the catalog
     rtrec.items (every item of the CSV and of --items, with its category), then
     the events before T with one COPY (in ts order), then rtrec_rebuild(), then
     VACUUM ANALYZE.
  3. Test events: events at or after T whose event type has weight > 0, whose
     user has an earlier interaction (weight > 0, earlier in the sorted order),
     whose item the user has not interacted with before, and whose item had an
     interaction before T.  --max-test N keeps the first N in time order.
  4. Frozen mode: rtrec_recommend(user, 20) before each test event, nothing
     inserted.  Real-time mode: walk every event from T on in time order; before
     each test event the same call; then INSERT the event (one autocommitted
     INSERT per event).  Frozen runs first, on the freshly loaded state.
     In real-time mode, Swing's refresh queue is drained with
     rtrec_swing_refresh() before each recommend call (--swing-refresh call,
     the default: the replay runs far faster than real time, and the worker
     refreshes within about a second, so this is what a live system sees), or
     left to the background worker (--swing-refresh worker: the stream is then
     hundreds of times faster than the data's real pace and the stored lists
     may lag; the queue length and age at each call are reported).  The drain
     is timed separately, not as latency.
  5. Prints HR@20, MRR@20, the number of test events, p50/p99 latency of the
     recommend calls (client side: execute + fetch), the real-time uplift
     HR(real-time)/HR(frozen), and the share of hits by the hit item's reason
     prefix (swing:, c2i:, cf:, ..., trending, other); writes the report to
     bench/out/replay-<dataset>-<date>.txt.

Categories: if every non-empty category_id (CSV and --items) is an integer it is
used as is; otherwise (MovieLens genres) names map to dense ids 1..K by sorted
name, the same mapping for both files.  An item's category: --items first, else
its latest event's in the CSV.
"""

import argparse
import bisect
import csv
import datetime
import fnmatch
import io
import math
import os
import subprocess
import sys
import time

import psycopg2

K = 20
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print("[replay.py %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

def is_int(s):
    try:
        int(s)
        return True
    except ValueError:
        return False


def read_events(path, window=None):
    """[(user, item, cat_raw, etype, ts)] in file order, window-filtered; and
    the number of rows dropped by the window."""
    rows = []
    dropped = 0
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        want = ["user_id", "item_id", "category_id", "event_type", "ts"]
        if [h.strip() for h in header[:5]] != want:
            raise SystemExit("%s: expected header %s, got %s" % (path, ",".join(want), ",".join(header)))
        for rec in r:
            if not rec:
                continue
            ts = int(rec[4])
            if window and not (window[0] <= ts < window[1]):
                dropped += 1
                continue
            rows.append((int(rec[0]), int(rec[1]), rec[2].strip(), rec[3].strip(), ts))
    return rows, dropped


def read_items(path):
    """{item: cat_raw} from an items CSV with item_id and category_id columns."""
    out = {}
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        if "item_id" not in r.fieldnames or "category_id" not in r.fieldnames:
            raise SystemExit("%s: needs item_id and category_id columns" % path)
        for rec in r:
            out[int(rec["item_id"])] = (rec["category_id"] or "").strip()
    return out


def category_mapper(raw_values):
    """A function raw category -> bigint or None, and a description."""
    vals = {v for v in raw_values if v != ""}
    if all(is_int(v) for v in vals):
        return (lambda v: int(v) if v != "" else None), "integer ids as in the data (%d categories)" % len(vals)
    ids = {name: i + 1 for i, name in enumerate(sorted(vals))}
    return (lambda v: ids[v] if v != "" else None), \
        "names mapped to dense ids 1..%d by sorted name (%s)" % (
            len(ids), ", ".join("%s=%d" % (n, i) for n, i in sorted(ids.items(), key=lambda x: x[1])))


def build_catalog(events, items_file_cats, window_rows_all=None):
    """{item: category bigint or None}, the mapper description."""
    raw = {}
    for (_, item, cat, _, _) in events:   # in ts order: the latest event wins
        if cat != "":
            raw[item] = cat
        else:
            raw.setdefault(item, "")
    if items_file_cats:
        for item, cat in items_file_cats.items():
            if cat != "" or item not in raw:
                raw[item] = cat
    mapper, desc = category_mapper(raw.values())
    return {item: mapper(c) for item, c in raw.items()}, desc


def parse_weights(spec, etypes):
    """{etype: weight} for every event type in the data from 'a=1,b_*=2,default=1'."""
    exact, patterns, default = {}, [], None
    for part in filter(None, (p.strip() for p in spec.split(","))):
        if "=" not in part:
            raise SystemExit("--weights: bad entry %r (want name=weight)" % part)
        name, val = (x.strip() for x in part.split("=", 1))
        w = float(val)
        if not (math.isfinite(w) and w >= 0):
            raise SystemExit("--weights: weight of %s must be finite and >= 0" % name)
        if name == "default":
            default = w
        elif any(c in name for c in "*?["):
            patterns.append((name, w))
        else:
            exact[name] = w
    out = {}
    for et in sorted(etypes):
        if et in exact:
            out[et] = exact[et]
            continue
        for pat, w in patterns:
            if fnmatch.fnmatchcase(et, pat):
                out[et] = w
                break
        else:
            if default is None:
                raise SystemExit("--weights: no weight for event type %r (add it, a pattern, or default=W)" % et)
            out[et] = default
    return out


def parse_settings(spec):
    out = []
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        if "=" not in part:
            raise SystemExit("--settings: bad entry %r (want name=value)" % part)
        name, val = (x.strip() for x in part.split("=", 1))
        out.append((name, float(val)))
    return out


def ts_text(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")


def split_and_select(events, weights, max_test):
    """T, index of the first event at or after T, the test events as
    (index into events) in time order."""
    n = len(events)
    if n < 10:
        raise SystemExit("too few events (%d)" % n)
    T = events[int(0.8 * n)][4]
    start = bisect.bisect_left([e[4] for e in events], T)
    seen_items = set()           # items with an interaction before T
    user_items = {}              # user -> set of items interacted with so far
    for (u, i, _, et, ts) in events[:start]:
        if weights[et] > 0:
            seen_items.add(i)
            user_items.setdefault(u, set()).add(i)
    tests = []
    for idx in range(start, n):
        u, i, _, et, _ = events[idx]
        if weights[et] <= 0:
            continue
        s = user_items.get(u)
        if s and i not in s and i in seen_items:
            tests.append(idx)
            if max_test and len(tests) >= max_test:
                break
        user_items.setdefault(u, set()).add(i)
    return T, start, tests


# ---------------------------------------------------------------------------
# database
# ---------------------------------------------------------------------------

def load(conn, events, start, catalog, weights, settings, copies=1, offset=0):
    """Loads events[:start] and the catalog, then rtrec_rebuild() and VACUUM
    ANALYZE; returns timings (s).  With copies > 1, copy k of every id gets
    + k * offset (bench/workload.py); each event's copies follow it, so the
    COPY stays in ts order."""
    cur = conn.cursor()
    t = {}
    conn.autocommit = False
    cur.execute("""INSERT INTO rtrec.event_types (event_type, weight) SELECT * FROM unnest(%s::text[], %s::float8[])
                   ON CONFLICT (event_type) DO UPDATE SET weight = excluded.weight""",
                (list(weights), list(weights.values())))
    for name, val in settings:
        cur.execute("UPDATE rtrec.config SET value = %s WHERE name = %s", (val, name))
        if cur.rowcount != 1:
            raise SystemExit("--settings: unknown setting %r" % name)
    conn.commit()

    def copy(target, lines):
        buf = io.StringIO()
        buf.writelines(lines)
        buf.seek(0)
        t0 = time.perf_counter()
        cur.copy_expert("COPY %s FROM STDIN" % target, buf)
        conn.commit()
        return time.perf_counter() - t0

    items = sorted(catalog)
    t["items"] = copy("rtrec.items (item_id, category_id)",
                      ("%d\t%s\n" % (item + k * offset, "\\N" if catalog[item] is None else catalog[item])
                       for k in range(copies) for item in items))
    # each timestamp formatted once, not once per copy
    t["copy"] = copy("rtrec.events (user_id, item_id, event_type, ts)",
                     ("%d\t%d\t%s\t%s\n" % (u + k * offset, i + k * offset, et, tt)
                      for (u, i, _, et, ts) in events[:start] for tt in (ts_text(ts),)
                      for k in range(copies)))

    t0 = time.perf_counter()
    cur.execute("SELECT rtrec_rebuild()")
    conn.commit()
    t["rebuild"] = time.perf_counter() - t0

    conn.autocommit = True
    t0 = time.perf_counter()
    cur.execute("VACUUM ANALYZE")
    t["analyze"] = time.perf_counter() - t0
    return t


def db_info(conn):
    cur = conn.cursor()
    cur.execute("SELECT name, value FROM rtrec.config ORDER BY name")
    config = cur.fetchall()
    cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'rtrec'")
    ver = cur.fetchone()
    cur.execute("SELECT version()")
    server = cur.fetchone()[0]
    cur.execute("""SELECT (SELECT count(*) FROM rtrec.swing_neighbors),
                          (SELECT count(DISTINCT item_id) FROM rtrec.swing_neighbors),
                          (SELECT count(*) FROM rtrec.items)""")
    sw = cur.fetchone()
    return config, (ver[0] if ver else None), server, sw


def state_sizes(conn):
    """'name rows/MB, ...' of rtrec's relations of at least 1 MB, largest first."""
    cur = conn.cursor()
    cur.execute("""SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
                    WHERE c.relnamespace = 'rtrec'::regnamespace AND c.relkind = 'r'
                      AND pg_total_relation_size(c.oid) >= 1048576
                    ORDER BY 2 DESC""")
    out = []
    for rel, size in cur.fetchall():
        cur.execute("SELECT count(*) FROM rtrec.%s" % rel)
        out.append("%s %d rows/%.0f MB" % (rel, cur.fetchone()[0], size / 1048576.0))
    return ", ".join(out)


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    # nearest rank
    k = max(0, min(len(v) - 1, int(math.ceil(p / 100.0 * len(v))) - 1))
    return v[k]


def reason_bucket(reason):
    if reason is None:
        return "(null)"
    r = reason.strip()
    if r.startswith("trending"):
        return "trending"
    if ":" in r:                      # swing:<item>, c2i:<category>, cf:<item>, ...
        return r.split(":", 1)[0] + ":"
    return "other"


class Result:
    def __init__(self, mode):
        self.mode = mode
        self.n = 0
        self.hits = 0
        self.rr = 0.0
        self.lat_ms = []
        self.reasons = {}
        self.short_lists = 0     # calls that returned fewer than K items
        self.empty_lists = 0
        self.other_examples = []
        self.wall = 0.0
        self.insert_ms = []
        self.refresh_ms = []
        self.refresh_lists = 0
        self.inserted = 0
        self.queue_len = []      # worker mode: Swing queue length and age at each call
        self.queue_age = []

    def record(self, item, rows):
        self.n += 1
        if len(rows) < K:
            self.short_lists += 1
            if not rows:
                self.empty_lists += 1
        for rank, (rid, _score, reason) in enumerate(rows, 1):
            if rid == item:
                self.hits += 1
                self.rr += 1.0 / rank
                b = reason_bucket(reason)
                self.reasons[b] = self.reasons.get(b, 0) + 1
                if b == "other" and len(self.other_examples) < 5:
                    self.other_examples.append(reason)
                break

    @property
    def hr(self):
        return self.hits / self.n if self.n else float("nan")

    @property
    def mrr(self):
        return self.rr / self.n if self.n else float("nan")


REC_SQL = "SELECT item_id, score, reason FROM rtrec_recommend($1, %d)" % K


def recommend(cur, user):
    t0 = time.perf_counter()
    cur.execute("EXECUTE rtrec_bench_rec(%s)", (user,))
    rows = cur.fetchall()
    return rows, (time.perf_counter() - t0) * 1000.0


def prepare(cur):
    cur.execute("PREPARE rtrec_bench_rec(bigint) AS " + REC_SQL)
    cur.execute("PREPARE rtrec_bench_ins(bigint, bigint, text, timestamptz) AS "
                "INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES ($1, $2, $3, $4)")


def progress(res, done, total, t0):
    el = time.perf_counter() - t0
    log("  %s: %d/%d test events, HR@20 %.4f, %.0f s" % (res.mode, done, total, res.hr, el))


def run_frozen(conn, events, tests):
    res = Result("frozen")
    cur = conn.cursor()
    t0 = time.perf_counter()
    for k, idx in enumerate(tests, 1):
        u, i = events[idx][0], events[idx][1]
        rows, ms = recommend(cur, u)
        res.lat_ms.append(ms)
        res.record(i, rows)
        if k % 2000 == 0:
            progress(res, k, len(tests), t0)
    res.wall = time.perf_counter() - t0
    return res


def run_realtime(conn, events, start, tests, swing_refresh):
    res = Result("real-time")
    cur = conn.cursor()
    test_set = set(tests)
    last = tests[-1] if tests else start - 1
    t0 = time.perf_counter()
    k = 0
    for idx in range(start, last + 1):
        u, i, _, et, ts = events[idx]
        if idx in test_set:
            if swing_refresh == "call":
                r0 = time.perf_counter()
                cur.execute("SELECT rtrec_swing_refresh()")
                res.refresh_lists += cur.fetchone()[0] or 0
                res.refresh_ms.append((time.perf_counter() - r0) * 1000.0)
            else:
                cur.execute("SELECT count(*), coalesce(extract(epoch FROM now() - min(queued_at)), 0)::float8 "
                            "FROM rtrec.swing_queue")
                ql, qa = cur.fetchone()
                res.queue_len.append(ql)
                res.queue_age.append(qa)
            rows, ms = recommend(cur, u)
            res.lat_ms.append(ms)
            res.record(i, rows)
            k += 1
            if k % 2000 == 0:
                progress(res, k, len(tests), t0)
        i0 = time.perf_counter()
        cur.execute("EXECUTE rtrec_bench_ins(%s, %s, %s, %s)", (u, i, et, ts_text(ts)))
        res.insert_ms.append((time.perf_counter() - i0) * 1000.0)
        res.inserted += 1
    res.wall = time.perf_counter() - t0
    return res


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

def git_desc():
    try:
        root = os.path.dirname(BENCH_DIR)
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src", "rtrec--1.0.sql"],
                               capture_output=True, text=True).stdout.strip()
        if os.environ.get("RTREC_BUILD_HEAD") == "1":
            return head + ", built from HEAD (git archive)"
        return head + (" (working tree: src or SQL differ from HEAD)" if dirty else "")
    except Exception:
        return "unknown"


def fmt_mode(r):
    lines = ["  %-10s HR@20 %.4f  MRR@20 %.4f  test events %d  hits %d  latency p50 %.2f ms  p99 %.2f ms  (max %.1f ms)"
             % (r.mode, r.hr, r.mrr, r.n, r.hits, pct(r.lat_ms, 50), pct(r.lat_ms, 99),
                max(r.lat_ms) if r.lat_ms else float("nan"))]
    if r.hits:
        share = ", ".join("%s %.1f%% (%d)" % (b, 100.0 * c / r.hits, c)
                          for b, c in sorted(r.reasons.items(), key=lambda x: -x[1]))
    else:
        share = "no hits"
    lines.append("             hits by reason: %s" % share)
    if r.other_examples:
        lines.append("             'other' reasons, e.g.: %s" % ", ".join(repr(x) for x in r.other_examples))
    lines.append("             lists shorter than %d: %d (empty: %d); wall %.1f s" % (K, r.short_lists, r.empty_lists,
                                                                                    r.wall))
    if r.inserted:
        lines.append("             inserts: %d events, one autocommitted INSERT each, p50 %.2f ms, p99 %.2f ms"
                     % (r.inserted, pct(r.insert_ms, 50), pct(r.insert_ms, 99)))
    if r.refresh_ms:
        lines.append("             rtrec_swing_refresh() before each call: p50 %.2f ms, p99 %.2f ms, %d lists rewritten"
                     % (pct(r.refresh_ms, 50), pct(r.refresh_ms, 99), r.refresh_lists))
    if r.queue_len:
        lines.append("             Swing queue left to the worker; at the calls: queue length p50 %d, p99 %d; "
                     "oldest queued event p50 %.1f s, p99 %.1f s (wall clock)"
                     % (pct(r.queue_len, 50), pct(r.queue_len, 99), pct(r.queue_age, 50), pct(r.queue_age, 99)))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True, help="interactions CSV: user_id,item_id,category_id,event_type,ts")
    ap.add_argument("--items", help="items CSV with item_id and category_id columns (optional)")
    ap.add_argument("--name", help="data set name for the report (default: the CSV's folder name)")
    ap.add_argument("--weights", required=True, help="'pv=1,fav=2', globs 'rating_*=1', 'default=1'")
    ap.add_argument("--window", help="lo:hi, keep lo <= ts < hi (unix seconds) before the split")
    ap.add_argument("--max-test", type=int, default=0, help="first N test events in time order (default: all)")
    ap.add_argument("--dsn", required=True, help="libpq DSN of a database with CREATE EXTENSION rtrec, empty")
    ap.add_argument("--mode", choices=["realtime", "frozen", "both"], default="both")
    ap.add_argument("--settings", default="", help="'name=value,...' written to rtrec.config before loading")
    ap.add_argument("--swing-refresh", choices=["call", "worker"], default="call",
                    help="real-time mode: drain Swing's queue with rtrec_swing_refresh() before each call "
                         "(default; exact but slow), or leave it to the background worker")
    ap.add_argument("--baseline", action="append", default=[],
                    help="'label=HR' printed next to the real-time HR@20 (repeatable)")
    ap.add_argument("--note", action="append", default=[], help="a line added to the report's settings")
    ap.add_argument("--train", type=int, default=0,
                    help="after loading the history, run rtrec_train(N, true) on it (its report is kept)")
    ap.add_argument("--out-dir", default=os.path.join(BENCH_DIR, "out"))
    a = ap.parse_args()

    name = a.name or os.path.basename(os.path.dirname(os.path.abspath(a.csv)))
    window = None
    if a.window:
        lo, hi = a.window.split(":")
        window = (int(lo), int(hi))

    log("reading %s" % a.csv)
    events, dropped = read_events(a.csv, window)
    events.sort(key=lambda e: e[4])          # stable
    etypes = {e[3] for e in events}
    weights = parse_weights(a.weights, etypes)
    settings = parse_settings(a.settings)
    items_cats = read_items(a.items) if a.items else None
    catalog, catdesc = build_catalog(events, items_cats)

    T, start, tests = split_and_select(events, weights, a.max_test)
    all_tests = len(split_and_select(events, weights, 0)[2]) if a.max_test else len(tests)
    hist_users = len({e[0] for e in events[:start]})
    hist_items = len({e[1] for e in events[:start]})
    log("%d events, T = %d (%s), %d history events, %d events from T, %d test events%s"
        % (len(events), T, ts_text(T), start, len(events) - start, len(tests),
           " (first %d of %d)" % (len(tests), all_tests) if a.max_test else ""))
    if not tests:
        raise SystemExit("no test events")

    conn = psycopg2.connect(a.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM rtrec.events")
    if cur.fetchone()[0] != 0:
        raise SystemExit("rtrec.events is not empty: replay needs a fresh database")
    cur.execute("SELECT count(*) FROM pg_proc WHERE proname = 'rtrec_recommend'")
    if cur.fetchone()[0] == 0:
        raise SystemExit("rtrec_recommend() does not exist in this database")

    log("loading: %d items, %d history events, then rtrec_rebuild()" % (len(catalog), start))
    tl = load(conn, events, start, catalog, weights, settings)
    log("loaded: items %.1f s, COPY %.1f s, rebuild %.1f s, VACUUM ANALYZE %.1f s"
        % (tl["items"], tl["copy"], tl["rebuild"], tl["analyze"]))
    train_rows = []
    if a.train:
        log("rtrec_train(%d, true) on the history" % a.train)
        t0 = time.perf_counter()
        cur.execute("SELECT measure, current, trained FROM rtrec_train(%s, true)", (a.train,))
        train_rows = cur.fetchall()
        tl["train"] = time.perf_counter() - t0
        for m, c, t in train_rows:
            log("  %-24s %10.4g %10.4g" % (m, c, t))
    config, extver, server, sw = db_info(conn)
    sizes_load = state_sizes(conn)
    prepare(cur)
    # warm-up: one call not counted (plan caching, first worker start)
    recommend(cur, events[tests[0]][0])

    results = []
    sizes_rt = None
    if a.mode in ("frozen", "both"):
        log("frozen mode: %d calls" % len(tests))
        results.append(run_frozen(conn, events, tests))
        for line in fmt_mode(results[-1]):
            log(line.strip())
    if a.mode in ("realtime", "both"):
        log("real-time mode: %d calls, %d inserts" % (len(tests), tests[-1] - start + 1))
        results.append(run_realtime(conn, events, start, tests, a.swing_refresh))
        for line in fmt_mode(results[-1]):
            log(line.strip())
        sizes_rt = state_sizes(conn)
    conn.close()

    byname = {r.mode: r for r in results}
    lines = []
    lines.append("rtrec next-item replay (BENCH.md, \"Quality: next-item replay\")")
    lines.append("date          %s" % datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    lines.append("build         commit %s, extension %s" % (git_desc(), extver))
    if os.environ.get("RTREC_INSTALLED_ID"):
        lines.append("              %s" % os.environ["RTREC_INSTALLED_ID"])
    lines.append("server        %s" % server)
    lines.append("data set      %s: %s%s" % (name, a.csv, (", items " + a.items) if a.items else ""))
    lines.append("window        %s" % ("%d <= ts < %d (%d rows dropped)" % (window[0], window[1], dropped)
                                       if window else "none"))
    lines.append("weights       %s  (spec %r)" % (", ".join("%s=%g" % kv for kv in sorted(weights.items())), a.weights))
    lines.append("categories    %s" % catdesc)
    lines.append("split         %d events; T = %d (%s), the ts at index floor(0.8 n)" % (len(events), T, ts_text(T)))
    lines.append("history       %d events before T (%d users, %d items), COPY in ts order; catalog %d items"
                 % (start, hist_users, hist_items, len(catalog)))
    lines.append("load          items %.1f s, COPY %.1f s, rtrec_rebuild() %.1f s, VACUUM ANALYZE %.1f s"
                 % (tl["items"], tl["copy"], tl["rebuild"], tl["analyze"]))
    lines.append("              swing_neighbors after rebuild: %d rows for %d items" % (sw[0], sw[1]))
    lines.append("              relations >= 1 MB after load: %s" % sizes_load)
    if sizes_rt:
        lines.append("              relations >= 1 MB after real-time: %s" % sizes_rt)
    lines.append("test events   %d%s; %d events from T on" % (
        len(tests), (" (the first %d in time order, of %d)" % (len(tests), all_tests)) if a.max_test else " (all)",
        len(events) - start))
    lines.append("call          %s, prepared; latency client side (execute + fetch), one warm-up call not counted"
                 % REC_SQL.replace("$1", "user"))
    if "real-time" in byname:
        lines.append("real-time     every event from T up to the last test event inserted (%d); Swing queue: %s"
                     % (byname["real-time"].inserted,
                        "rtrec_swing_refresh() before each call" if a.swing_refresh == "call"
                        else "background worker only (the replay runs much faster than real time)"))
    lines.append("rtrec.config  %s" % ", ".join("%s=%g" % kv for kv in config))
    if settings:
        lines.append("              (set by --settings: %s)" % a.settings)
    for n in a.note:
        lines.append("note          %s" % n)
    if train_rows:
        lines.append("training      SELECT * FROM rtrec_train(%d, true) after loading the history (%.1f s);"
                     " rtrec.config above is after it" % (a.train, tl["train"]))
        for m, c, t in train_rows:
            lines.append("              %-24s current %-10.4g trained %.4g" % (m, c, t))
    lines.append("")
    lines.append("Results")
    for r in results:
        lines.extend(fmt_mode(r))
    if "real-time" in byname and "frozen" in byname:
        rt, fr = byname["real-time"], byname["frozen"]
        up = rt.hr / fr.hr if fr.hr > 0 else float("nan")
        lines.append("  real-time uplift HR@20(real-time) / HR@20(frozen) = %.4f / %.4f = %.2fx" % (rt.hr, fr.hr, up))
    if a.baseline:
        lines.append("")
        ref = byname.get("real-time") or results[0]
        lines.append("Baselines (HR@20, real-time, from the issue) vs rtrec %s HR@20 %.4f:" % (ref.mode, ref.hr))
        for b in a.baseline:
            label, val = b.rsplit("=", 1)
            v = float(val)
            lines.append("  %-28s %.4f   rtrec / baseline = %.2fx" % (label, v, ref.hr / v if v else float("nan")))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(a.out_dir, exist_ok=True)
    out = os.path.join(a.out_dir, "replay-%s-%s.txt" % (name, time.strftime("%Y%m%d-%H%M%S")))
    with open(out, "w") as f:
        f.write(text)
    log("report written to %s" % out)


if __name__ == "__main__":
    main()
