#!/usr/bin/python3
"""bench/workload.py: loads a replicated data set into rtrec (for bench/latency.sh).

Copy k (k = 0 .. copies-1) of the CSV gets user_id + k*10^7 and item_id + k*10^7;
categories are shared (the same mapping as bench/replay.py: integer ids as is,
names to dense ids by sorted name).  Loads rtrec.event_types (--weights), the
catalog rtrec.items (every item of every copy, with its category), then every
event with one COPY in ts order (copies interleaved), then rtrec_rebuild(), then
VACUUM ANALYZE; then fills bench.active_users(idx, user_id) and
bench.active_items(idx, item_id) (users / items with at least one interaction,
idx = 1..N in random order) for pgbench.

Prints one line: key=value pairs (events, users, items, copy_s, rebuild_s, ...).
"""

import argparse
import os
import sys

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from replay import build_catalog, load, parse_settings, parse_weights, read_events, read_items  # noqa: E402

OFFSET = 10 ** 7


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--items")
    ap.add_argument("--weights", required=True)
    ap.add_argument("--window")
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--settings", default="")
    a = ap.parse_args()

    window = tuple(int(x) for x in a.window.split(":")) if a.window else None
    events, _ = read_events(a.csv, window)
    events.sort(key=lambda e: e[4])
    weights = parse_weights(a.weights, {e[3] for e in events})
    catalog, _ = build_catalog(events, read_items(a.items) if a.items else None)
    for (u, i, _, _, _) in events:
        if u >= OFFSET or i >= OFFSET:
            raise SystemExit("ids must be below 10^7 for the offsets (user %d, item %d)" % (u, i))

    conn = psycopg2.connect(a.dsn)
    t = load(conn, events, len(events), catalog, weights, parse_settings(a.settings), a.copies, OFFSET)
    n = len(events) * a.copies
    cur = conn.cursor()

    cur.execute("""CREATE SCHEMA IF NOT EXISTS bench;
        DROP TABLE IF EXISTS bench.active_users, bench.active_items;
        SELECT setseed(0.25);
        CREATE TABLE bench.active_users AS
          SELECT row_number() OVER (ORDER BY random())::int AS idx, user_id
            FROM (SELECT DISTINCT user_id FROM rtrec.user_items) s;
        CREATE TABLE bench.active_items AS
          SELECT row_number() OVER (ORDER BY random())::int AS idx, item_id
            FROM (SELECT DISTINCT item_id FROM rtrec.user_items) s;
        ALTER TABLE bench.active_users ADD PRIMARY KEY (idx);
        ALTER TABLE bench.active_items ADD PRIMARY KEY (idx);
        ANALYZE bench.active_users, bench.active_items;""")
    cur.execute("""SELECT (SELECT count(*) FROM bench.active_users), (SELECT count(*) FROM bench.active_items),
                          (SELECT count(*) FROM rtrec.swing_neighbors),
                          (SELECT count(DISTINCT item_id) FROM rtrec.swing_neighbors),
                          pg_database_size(current_database())""")
    nu, ni, sw_rows, sw_items, dbsize = cur.fetchone()
    conn.close()
    print("events=%d users=%d items=%d catalog=%d copy_s=%.2f rebuild_s=%.2f analyze_s=%.2f items_s=%.2f "
          "swing_rows=%d swing_items=%d db_mb=%.0f"
          % (n, nu, ni, len(catalog) * a.copies, t["copy"], t["rebuild"], t["analyze"], t["items"],
             sw_rows, sw_items, dbsize / 1048576.0))


if __name__ == "__main__":
    main()
