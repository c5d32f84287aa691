#!/usr/bin/env bash
# bench/ingest.sh: the "Ingest" protocol of BENCH.md.
#
# Builds and installs rtrec (unless --no-build), starts a throwaway PostgreSQL
# cluster as the postgres OS user in a temp dir (loopback and a socket in that
# dir only), and measures inserts into rtrec.events against the same inserts
# into bench.plain_events, a table with the same columns and no triggers:
#   single-row  pgbench, 2 clients, one INSERT per transaction
#   bulk        COPY of 200k events, and one INSERT ... SELECT of 200k rows
#   hot item    pgbench, 8 clients, every event on one of 10 items, against
#               the same 8-client run with zipfian items
# Runs alternate plain / rtrec (or hot / uniform) each round; the report gives
# medians and ratios of medians.  Timings are printed, never asserted.  At the
# end, rtrec_verify() must return no rows (the state matches the events).
#
# When rtrec has a Swing refresh worker (rtrec.swing_queue exists), every
# timed run starts with an empty queue: the script waits for the worker to
# drain what the previous run queued, and reports how long that took
# ("catch-up"), so that the worker's work never lands in the plain runs.
# A run that fails (error, crashed backend) is reported as FAIL and the
# benchmark goes on after the server is back.
#
# Usage: bench/ingest.sh [options]
#   --duration N       seconds per pgbench run (default 20)
#   --rounds N         rounds of the pgbench measurements (default 3)
#   --bulk-rounds N    rounds of the bulk measurements (default 7: a round takes
#                      seconds, and the plain table's COPY varies most)
#   --quick            --duration 5 --rounds 1 --bulk-rounds 1
#   --no-build         use the installed extension as is
#   --head             build the committed HEAD (git archive into the temp dir),
#                      not the working tree
#   --src DIR          build the tree in DIR instead
#   --private          do not `make install` into the system; only into the
#                      private tree the benchmark server runs from
#   --drain-timeout N  longest wait for the Swing queue to drain (default 600 s)
#   --only LIST        run only these parts: bulk, single, hot (comma-separated;
#                      default all three)
#   --no-worker        max_worker_processes = 0, so that rtrec's Swing refresh
#                      worker cannot start: measures the ingest path alone (the
#                      trigger still queues its work; nothing drains the queue)
#   --keep             leave the cluster running at the end, for inspection
# The report is printed and written to bench/out/ingest-<date>.txt.
set -euo pipefail

DURATION=20
ROUNDS=3
BULK_ROUNDS=7
BUILD=1
BUILD_FROM=tree
BUILD_DIR=
SYSTEM_INSTALL=1
DRAIN_TIMEOUT=600
ONLY=bulk,single,hot
NO_WORKER=0
KEEP=0
while [ $# -gt 0 ]; do
	case "$1" in
		--duration) DURATION="${2:?--duration needs a number of seconds}"; shift 2 ;;
		--rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
		--bulk-rounds) BULK_ROUNDS="${2:?--bulk-rounds needs a number}"; shift 2 ;;
		--quick) DURATION=5; ROUNDS=1; BULK_ROUNDS=1; shift ;;
		--no-build) BUILD=0; BUILD_FROM=installed; shift ;;
		--head) BUILD=1; BUILD_FROM=HEAD; shift ;;
		--src) BUILD=1; BUILD_FROM=dir; BUILD_DIR="${2:?--src needs a directory}"; shift 2 ;;
		--private) SYSTEM_INSTALL=0; shift ;;
		--drain-timeout) DRAIN_TIMEOUT="${2:?--drain-timeout needs a number of seconds}"; shift 2 ;;
		--only) ONLY="${2:?--only needs a list such as single,hot}"; shift 2 ;;
		--no-worker) NO_WORKER=1; shift ;;
		--keep) KEEP=1; shift ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
	esac
done
case "$DURATION$ROUNDS$BULK_ROUNDS$DRAIN_TIMEOUT" in *[!0-9]*) echo "--duration, --rounds, --bulk-rounds and --drain-timeout take whole numbers" >&2; exit 2 ;; esac
[ "$DURATION" -ge 1 ] && [ "$ROUNDS" -ge 1 ] && [ "$BULK_ROUNDS" -ge 1 ] || { echo "--duration, --rounds and --bulk-rounds must be >= 1" >&2; exit 2; }
for part in ${ONLY//,/ }; do
	case "$part" in bulk|single|hot) ;; *) echo "--only: unknown part $part (bulk, single, hot)" >&2; exit 2 ;; esac
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGBIN=$("$PG_CONFIG" --bindir)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# workload
N_USERS=100000
N_ITEMS=50000
N_CATEGORIES=500
ZIPF_S=1.1
HOT_ITEMS=10
BULK_EVENTS=200000
SINGLE_CLIENTS=2
HOT_CLIENTS=8
# event types: view 70 %, click 20 %, cart 7 %, purchase 3 % (all seeded, weight > 0)
PGBENCH_THREADS=2

log() { echo "[ingest.sh $(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# rtrec_as_pg (run as the postgres OS user: the server refuses root),
# rtrec_link_farm and rtrec_free_port
. "$ROOT/bench/cluster.sh"

# ---- throwaway cluster ----
TMP=$(mktemp -d /tmp/rtrec-ingest.XXXXXX)
chmod 755 "$TMP"
[ "$(id -u)" -eq 0 ] && chown postgres: "$TMP"
DATA="$TMP/data"
STARTED=0

cleanup() {
	local rc=$?
	if [ $rc -ne 0 ] && [ -f "$TMP/server.log" ]; then
		mkdir -p "$ROOT/bench/out"
		cp "$TMP/server.log" "$ROOT/bench/out/ingest-$(date +%Y%m%d-%H%M%S)-failed-server.log" || true
		log "server log tail (whole log copied to bench/out/):"
		tail -n 20 "$TMP/server.log" >&2 || true
	fi
	if [ "$KEEP" -eq 1 ] && [ "$STARTED" -eq 1 ]; then
		log "--keep: cluster left running: psql -h $TMP -p $PORT -U postgres bench"
		log "  stop it with: runuser -u postgres -- $SRVBIN/pg_ctl -D $DATA -m fast stop && rm -rf $TMP"
		exit $rc
	fi
	if [ "$STARTED" -eq 1 ]; then
		rtrec_as_pg "$SRVBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The server runs from a private copy of the PostgreSQL tree in $TMP/inst: its
# own postgres, initdb and pg_ctl binaries (PostgreSQL finds its lib and share
# directories relative to the binary), symbolic links to every system file,
# and rtrec's files as built here.  So another `make install` on this machine
# during the run cannot change what is measured.
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
INST="$TMP/inst"
SRVBIN="$INST$PGBIN"

BUILD_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=""
if [ "$BUILD_FROM" = tree ] && [ -n "$(git -C "$ROOT" status --porcelain -- src 'rtrec--*.sql' Makefile 2>/dev/null)" ]; then
	DIRTY=" (working tree: src, SQL or Makefile differ from HEAD)"
fi
if [ "$BUILD" -eq 1 ]; then
	SRC="$ROOT"
	if [ "$BUILD_FROM" = HEAD ]; then
		SRC="$TMP/src"
		mkdir "$SRC"
		BUILD_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
		git -C "$ROOT" archive "$BUILD_COMMIT" | tar -x -C "$SRC" || die "git archive HEAD failed"
	elif [ "$BUILD_FROM" = dir ]; then
		SRC=$(cd "$BUILD_DIR" && pwd) || die "no directory $BUILD_DIR"
	fi
	log "building rtrec from $BUILD_FROM ($SRC)"
	(cd "$SRC" && make -s PG_CONFIG="$PG_CONFIG") >&2 || die "build failed"
	if [ "$SYSTEM_INSTALL" -eq 1 ]; then
		(cd "$SRC" && make -s install PG_CONFIG="$PG_CONFIG") >&2 || die "make install failed"
	fi
	(cd "$SRC" && make -s install PG_CONFIG="$PG_CONFIG" DESTDIR="$INST") >&2 \
		|| die "install into the private tree failed"
else
	log "using the installed rtrec ($PKGLIBDIR/rtrec.so)"
	mkdir -p "$INST$PKGLIBDIR" "$INST$SHAREDIR/extension"
	cp "$PKGLIBDIR/rtrec.so" "$INST$PKGLIBDIR/" || die "rtrec is not installed"
	cp "$SHAREDIR"/extension/rtrec[.-]* "$INST$SHAREDIR/extension/"
fi

mkdir -p "$SRVBIN"
cp "$PGBIN/postgres" "$PGBIN/initdb" "$PGBIN/pg_ctl" "$SRVBIN/"
rtrec_link_farm "$PKGLIBDIR" "$INST$PKGLIBDIR"
mkdir -p "$INST$SHAREDIR/extension"
rtrec_link_farm "$SHAREDIR" "$INST$SHAREDIR"
RTREC_SO_MD5=$(md5sum <"$INST$PKGLIBDIR/rtrec.so" | cut -c1-12)


log "initdb in $TMP"
rtrec_as_pg "$SRVBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$TMP/initdb.log" 2>&1 \
	|| { cat "$TMP/initdb.log" >&2; die "initdb failed"; }

SERVER_SETTINGS="shared_buffers=512MB synchronous_commit=off max_connections=50 max_wal_size=4GB checkpoint_timeout=30min"
[ "$NO_WORKER" -eq 0 ] || SERVER_SETTINGS="$SERVER_SETTINGS max_worker_processes=0 (--no-worker)"
for attempt in 1 2 3 4 5; do
	PORT=$(rtrec_free_port) || die "no free port found"
	cat >>"$DATA/postgresql.conf" <<EOF
# bench/ingest.sh, attempt $attempt
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$TMP'
shared_buffers = 512MB
synchronous_commit = off
max_connections = 50
max_wal_size = 4GB
checkpoint_timeout = 30min
EOF
	[ "$NO_WORKER" -eq 0 ] || echo "max_worker_processes = 0" >>"$DATA/postgresql.conf"
	# core files of crashed backends land in $DATA (kept with --keep)
	if rtrec_as_pg bash -c 'ulimit -c unlimited 2>/dev/null; exec "$@"' pg_ctl \
		"$SRVBIN/pg_ctl" -D "$DATA" -l "$TMP/server.log" -w -t 60 start >/dev/null 2>&1; then
		STARTED=1
		break
	fi
	log "server did not start on port $PORT, retrying"
done
[ "$STARTED" -eq 1 ] || die "could not start the server (see $TMP/server.log)"

export PGHOST="$TMP" PGPORT="$PORT" PGUSER=postgres PGDATABASE=bench
sql() { rtrec_as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "${DB:-bench}" "$@"; }
sql_value() { sql -A -t -c "$1"; }

# waits until the server accepts connections again (after a crash, recovery)
wait_ready() {
	local i
	for i in $(seq 1 300); do
		if rtrec_as_pg "$PGBIN/pg_isready" -q -d bench && sql -c "SELECT 1" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	die "the server did not come back"
}

# number of backend crashes in the server log so far
crashes() { grep -c 'terminated by signal' "$TMP/server.log" || true; }

# runs SQL statements and prints the time of the last one in milliseconds,
# or FAIL (the error goes to stderr and the server is waited for)
# Every timed run starts with no autovacuum worker running (waits up to a
# minute): a worker that the previous run's rows woke up would otherwise
# share the two cores with whichever run came next.
quiet() {
	local waited=0
	while [ "$(sql_value "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'" 2>/dev/null || echo 0)" != 0 ]; do
		[ "$waited" -lt 600 ] || { log "WARNING: autovacuum still running after 60 s; timing anyway"; return 0; }
		sleep 0.1
		waited=$((waited + 1))
	done
	[ "$waited" -eq 0 ] || log "  (waited $((waited / 10)).$((waited % 10)) s for autovacuum)"
}

sql_time_ms() {
	local out
	quiet
	if out=$(printf '%s\n\\timing on\n%s\n' "$1" "$2" | sql -A -t -f - 2>&1); then
		echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1
	else
		log "FAILED: ${2:0:80}..."
		echo "$out" | grep -v '^Time:' | head -n 5 >&2
		wait_ready
		echo FAIL
	fi
}

DB=postgres sql -c "CREATE DATABASE bench"
log "creating the extension and the reference table"
sql <<'EOF'
CREATE EXTENSION rtrec;
CREATE SCHEMA bench;
CREATE TABLE bench.plain_events (
	event_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL,
	item_id bigint NOT NULL,
	event_type text NOT NULL,
	ts timestamptz NOT NULL DEFAULT now(),
	context jsonb
);
EOF

log "populating rtrec.items: $N_ITEMS items in $N_CATEGORIES categories"
sql >/dev/null <<EOF
SELECT setseed(0.17);
INSERT INTO rtrec.items (item_id, category_id, price, brand)
SELECT i, 1 + floor(random() * $N_CATEGORIES)::bigint,
	   round((1 + random() * 199)::numeric, 2), 'brand' || (1 + i % 200)
  FROM generate_series(1, $N_ITEMS) i;
ANALYZE rtrec.items;
EOF

# ---- bulk input ----
# One SELECT generates the bulk events, for the CSV and for INSERT ... SELECT:
# users uniform over 1..N_USERS; items zipfian (s = ZIPF_S) over 1..N_ITEMS,
# exact, by inverse CDF (width_bucket over the cumulative probabilities, an
# array built once per statement); event types by the same 70/20/7/3 draw as
# the pgbench scripts; ts one event every 3 s up to now (about a week), in order.
ZIPF_CUM="(SELECT array_agg(c ORDER BY k) FROM (SELECT k, sum(power(k::float8, -($ZIPF_S)::float8)) OVER (ORDER BY k)
		/ sum(power(k::float8, -($ZIPF_S)::float8)) OVER () AS c FROM generate_series(1, $N_ITEMS) k) z)"
GEN_SELECT="SELECT 1 + floor(random() * $N_USERS)::bigint AS user_id,
	   least($N_ITEMS, 1 + width_bucket(random(), $ZIPF_CUM))::bigint AS item_id,
	   (ARRAY['view', 'click', 'cart', 'purchase'])[CASE WHEN r <= 70 THEN 1 WHEN r <= 90 THEN 2 WHEN r <= 97 THEN 3 ELSE 4 END] AS event_type,
	   now() - ($BULK_EVENTS - g) * interval '3 seconds' AS ts
  FROM generate_series(1, $BULK_EVENTS) g, LATERAL (SELECT 1 + floor(random() * 100)::int + 0 * g AS r) x"
log "generating $BULK_EVENTS events into $TMP/events.csv"
CSV="$TMP/events.csv"
sql -c "SELECT setseed(0.42)" -c "COPY ($GEN_SELECT) TO '$CSV' WITH (FORMAT csv)" >/dev/null
sql -c "CREATE TABLE bench.csv_check (user_id bigint, item_id bigint, event_type text, ts timestamptz)" \
	-c "COPY bench.csv_check FROM '$CSV' WITH (FORMAT csv)"
CSV_CHECK=$(sql_value "SELECT format('%s events, %s distinct users, %s distinct items, item 1 share %s, top-10 items share %s',
	count(*), count(DISTINCT user_id), count(DISTINCT item_id),
	round(avg((item_id = 1)::int), 3), round(avg((item_id <= 10)::int), 3)) FROM bench.csv_check")
CSV_TYPES=$(sql_value "SELECT string_agg(format('%s %s%%', event_type, p), ', ' ORDER BY p DESC)
	FROM (SELECT event_type, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS p FROM bench.csv_check GROUP BY 1) t")
sql -c "DROP TABLE bench.csv_check"

# ---- pgbench scripts ----
# \set et: the same 70/20/7/3 draw of view/click/cart/purchase as the CSV
pgbench_script() {	# $1 table, $2 item expression
	cat <<EOF
\\set user random(1, $N_USERS)
\\set item $2
\\set r random(1, 100)
\\set et case when :r <= 70 then 1 when :r <= 90 then 2 when :r <= 97 then 3 else 4 end
INSERT INTO $1 (user_id, item_id, event_type) VALUES (:user, :item, (ARRAY['view', 'click', 'cart', 'purchase'])[:et]);
EOF
}
ZIPF_ITEM="random_zipfian(1, $N_ITEMS, $ZIPF_S)"
HOT_ITEM="random(1, $HOT_ITEMS)"
pgbench_script bench.plain_events "$ZIPF_ITEM" >"$TMP/plain.sql"
pgbench_script rtrec.events "$ZIPF_ITEM" >"$TMP/rtrec.sql"
pgbench_script rtrec.events "$HOT_ITEM" >"$TMP/hot.sql"
[ "$(id -u)" -eq 0 ] && chown postgres: "$TMP"/*.sql

# runs pgbench; prints tps (without initial connection time), or FAIL
run_pgbench() {	# $1 script, $2 clients, $3 label
	local out tps failed
	sql -c "CHECKPOINT" >/dev/null
	quiet
	out=$(rtrec_as_pg "$PGBIN/pgbench" -n -M prepared -f "$1" -c "$2" -j "$PGBENCH_THREADS" -T "$DURATION" bench 2>&1) || true
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*without initial connection time.*/\1/p')
	failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
	if [ -z "$tps" ] || echo "$out" | grep -q 'aborted\|Run was aborted'; then
		log "FAILED: pgbench ($3):"
		echo "$out" | grep -i 'error\|abort\|fatal' | sort | uniq -c | head -n 5 >&2
		wait_ready
		echo FAIL
		return 0
	fi
	[ "${failed:-0}" = 0 ] || log "WARNING: $3: $failed failed transactions"
	log "  $3: $tps tps"
	echo "$tps"
}

# Swing refresh worker: waits until rtrec.swing_queue is empty and prints
# "<queued rows at the start> <seconds to drain>" (seconds "timeout" if not
# drained within DRAIN_TIMEOUT); prints "- -" when rtrec has no queue.
HAS_QUEUE=0
drain() {
	local start now n first=""
	[ "$HAS_QUEUE" -eq 1 ] || { echo "- -"; return 0; }
	start=$(date +%s.%N)
	while :; do
		n=$(sql_value "SELECT count(*) FROM rtrec.swing_queue" 2>/dev/null || echo error)
		if [ "$n" != error ]; then
			[ -n "$first" ] || first=$n
			[ "$n" = 0 ] && break
		fi
		now=$(date +%s.%N)
		if awk -v a="$start" -v b="$now" -v t="$DRAIN_TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
			log "WARNING: the Swing queue still holds $n rows after ${DRAIN_TIMEOUT}s"
			echo "${first:-?} timeout"
			return 0
		fi
		sleep 0.2
	done
	now=$(date +%s.%N)
	awk -v f="$first" -v a="$start" -v b="$now" 'BEGIN { printf "%s %.1f\n", f, (f == 0 ? 0 : b - a) }'
}

median() {	# median of the numeric arguments; n/a if none
	printf '%s\n' "$@" | awk '/^[0-9]+(\.[0-9]*)?$/' | sort -g \
		| awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
x() { if isnum "$1"; then echo "${1}x"; else echo "$1"; fi; }
isnum() { [[ "$1" =~ ^[0-9]+(\.[0-9]*)?$ ]]; }
ratio() { if isnum "$1" && isnum "$2"; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; else echo n/a; fi; }
fmt() { if isnum "$1"; then awk -v a="$1" 'BEGIN { printf "%.0f", a }'; else echo "$1"; fi; }
per_s() { if isnum "$2"; then awk -v n="$1" -v ms="$2" 'BEGIN { printf "%.0f", n / (ms / 1000) }'; else echo "$2"; fi; }
target() { if isnum "$1"; then awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "meets" : "BELOW") " target >= " t "x" }'; else echo "no figure; target >= $2x"; fi; }

HAS_QUEUE=$(sql_value "SELECT (to_regclass('rtrec.swing_queue') IS NOT NULL)::int")
[ "$NO_WORKER" -eq 0 ] || HAS_QUEUE=0	# nothing would drain it

# ---- bulk ----
log "bulk: COPY and INSERT ... SELECT of $BULK_EVENTS events, $BULK_ROUNDS round(s)"
COPY_PLAIN=(); COPY_RTREC=(); INS_PLAIN=(); INS_RTREC=(); DRAIN_COPY=(); DRAIN_INS=()
want bulk || log "bulk: skipped (--only)"
want bulk && for round in $(seq 1 "$BULK_ROUNDS"); do
	sql -c "TRUNCATE bench.plain_events, rtrec.events" -c "CHECKPOINT"
	COPY_PLAIN+=("$(sql_time_ms "" "COPY bench.plain_events (user_id, item_id, event_type, ts) FROM '$CSV' WITH (FORMAT csv);")")
	sql -c "CHECKPOINT"
	COPY_RTREC+=("$(sql_time_ms "" "COPY rtrec.events (user_id, item_id, event_type, ts) FROM '$CSV' WITH (FORMAT csv);")")
	DRAIN_COPY+=("$(drain)")
	log "  round $round COPY: plain ${COPY_PLAIN[-1]} ms, rtrec ${COPY_RTREC[-1]} ms; Swing queue rows / catch-up s: ${DRAIN_COPY[-1]}"
	sql -c "TRUNCATE bench.plain_events, rtrec.events" -c "CHECKPOINT"
	INS_PLAIN+=("$(sql_time_ms "SELECT setseed(0.5);" "INSERT INTO bench.plain_events (user_id, item_id, event_type, ts) $GEN_SELECT;")")
	sql -c "CHECKPOINT"
	INS_RTREC+=("$(sql_time_ms "SELECT setseed(0.5);" "INSERT INTO rtrec.events (user_id, item_id, event_type, ts) $GEN_SELECT;")")
	DRAIN_INS+=("$(drain)")
	log "  round $round INSERT ... SELECT: plain ${INS_PLAIN[-1]} ms, rtrec ${INS_RTREC[-1]} ms; Swing queue rows / catch-up s: ${DRAIN_INS[-1]}"
done
if want bulk; then
	# what the generate_series SELECT alone costs (included in both INSERT timings)
	GEN_MS=$(sql_time_ms "SELECT setseed(0.5);" "SELECT count(*) FROM ($GEN_SELECT) s;")
	INS_CHECK=$(sql_value "SELECT format('%s events, item 1 share %s, top-10 items share %s',
		count(*), round(avg((item_id = 1)::int), 3), round(avg((item_id <= 10)::int), 3)) FROM bench.plain_events")
	STATE_ROWS=$(sql_value "SELECT format('user_state %s, item_state %s, user_item_state %s rows; %s (user, category) pairs',
		(SELECT count(*) FROM rtrec.user_state), (SELECT count(*) FROM rtrec.item_state),
		(SELECT count(*) FROM rtrec.user_item_state), (SELECT count(*) FROM rtrec.user_category))")
fi

# ---- single-row, 2 clients ----
log "single-row: $SINGLE_CLIENTS clients, ${DURATION}s per run, $ROUNDS round(s)"
SR_PLAIN=(); SR_RTREC=(); DRAIN_SR=()
want single || log "single-row: skipped (--only)"
want single && for round in $(seq 1 "$ROUNDS"); do
	SR_PLAIN+=("$(run_pgbench "$TMP/plain.sql" "$SINGLE_CLIENTS" "round $round plain")")
	SR_RTREC+=("$(run_pgbench "$TMP/rtrec.sql" "$SINGLE_CLIENTS" "round $round rtrec")")
	DRAIN_SR+=("$(drain)")
	log "  Swing queue rows / catch-up s: ${DRAIN_SR[-1]}"
done

# ---- hot item vs zipfian, 8 clients ----
log "hot item: $HOT_CLIENTS clients, ${DURATION}s per run, $ROUNDS round(s)"
HOT=(); UNI8=(); DRAIN_HOT=(); DRAIN_UNI8=()
want hot || log "hot item: skipped (--only)"
want hot && for round in $(seq 1 "$ROUNDS"); do
	HOT+=("$(run_pgbench "$TMP/hot.sql" "$HOT_CLIENTS" "round $round rtrec hot")")
	DRAIN_HOT+=("$(drain)")
	log "  Swing queue rows / catch-up s: ${DRAIN_HOT[-1]}"
	UNI8+=("$(run_pgbench "$TMP/rtrec.sql" "$HOT_CLIENTS" "round $round rtrec zipfian")")
	DRAIN_UNI8+=("$(drain)")
	log "  Swing queue rows / catch-up s: ${DRAIN_UNI8[-1]}"
done

# ---- correctness after load ----
log "checking rtrec_verify()"
drain >/dev/null
N_EVENTS=$(sql_value "SELECT count(*) FROM rtrec.events" || echo "?")
VERIFY=$(sql_value "SELECT count(*) FROM rtrec_verify()" || echo "error")
if [ "$VERIFY" != 0 ]; then
	sql -c "SELECT relation, count(*), min(key) FROM rtrec_verify() GROUP BY 1" >&2 || true
fi
N_CRASHES=$(crashes)

# ---- report ----
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_DIR="$ROOT/bench/out"
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/ingest-$STAMP.txt"

m_copy_p=$(median "${COPY_PLAIN[@]}"); m_copy_r=$(median "${COPY_RTREC[@]}")
m_ins_p=$(median "${INS_PLAIN[@]}"); m_ins_r=$(median "${INS_RTREC[@]}")
m_sr_p=$(median "${SR_PLAIN[@]}"); m_sr_r=$(median "${SR_RTREC[@]}")
m_hot=$(median "${HOT[@]}"); m_uni8=$(median "${UNI8[@]}")
eps() { local out=() v; for v in "$@"; do out+=("$(per_s "$BULK_EVENTS" "$v")"); done; echo "${out[*]}"; }
tpsl() { local out=() v; for v in "$@"; do out+=("$(fmt "$v")"); done; echo "${out[*]}"; }
# the Swing worker's catch-up after runs: "median N s  [rows/s per run]"
catchup() {
	local secs=() runs=() d
	[ "$NO_WORKER" -eq 0 ] || { echo "n/a (--no-worker: the queue is not drained)"; return; }
	[ "$HAS_QUEUE" -eq 1 ] || { echo "n/a (no Swing queue in this build)"; return; }
	for d in "$@"; do
		secs+=("${d#* }")
		runs+=("${d% *} rows/${d#* } s")
	done
	echo "median $(median "${secs[@]}") s  [$(IFS=,; echo "${runs[*]}" | sed 's/,/, /g')]"
}
r_sr=$(ratio "$m_sr_r" "$m_sr_p")
r_copy=$(ratio "$m_copy_p" "$m_copy_r")	# events/s ratio = inverse time ratio
r_ins=$(ratio "$m_ins_p" "$m_ins_r")
r_hot8=$(ratio "$m_hot" "$m_uni8")
r_hot2=$(ratio "$m_hot" "$m_sr_r")
case "$BUILD_FROM" in
	dir) BUILT="tree in $SRC" ;;
	tree) BUILT="working tree at commit $BUILD_COMMIT$DIRTY" ;;
	HEAD) BUILT="HEAD, commit $BUILD_COMMIT" ;;
	*) BUILT="the installed extension" ;;
esac

{
cat <<EOF
rtrec ingest benchmark (BENCH.md, "Ingest")
date         $(date -Is)
rtrec        $BUILT; rtrec.so md5 $RTREC_SO_MD5
server       $(sql_value "SELECT version()")
machine      $(nproc) CPUs ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)), $(free -g | awk '/^Mem:/ { print $2 " GB RAM" }'), shared with other work
settings     $SERVER_SETTINGS; everything else default (fsync on, autovacuum on, work_mem 4MB)
             CHECKPOINT before every timed run, which starts when no autovacuum worker runs$( [ "$HAS_QUEUE" -eq 1 ] && echo "; every timed run starts with an empty Swing queue")
workload     users uniform 1..$N_USERS; items zipfian s=$ZIPF_S over 1..$N_ITEMS;
             event types view/click/cart/purchase drawn 70/20/7/3 %;
             rtrec.items: $N_ITEMS items in $N_CATEGORIES categories (every event's item is known)
reference    bench.plain_events: same columns as rtrec.events, no triggers
rounds       $ROUNDS (pgbench runs), $BULK_ROUNDS (bulk); plain and rtrec alternating; figures are medians (all runs in brackets)
order        bulk rounds, then single-row rounds, then hot/zipfian rounds (single-row and hot
             runs add to the events of the last bulk round; nothing is truncated between them)
parts        ${ONLY//,/, }
EOF
want bulk && cat <<EOF

Bulk: $BULK_EVENTS events in one statement, both tables TRUNCATEd before each round
  COPY FROM a csv file ($CSV_CHECK;
                        $CSV_TYPES)
    plain  $(per_s "$BULK_EVENTS" "$m_copy_p") events/s  [$(eps "${COPY_PLAIN[@]}")]
    rtrec  $(per_s "$BULK_EVENTS" "$m_copy_r") events/s  [$(eps "${COPY_RTREC[@]}")]
    ratio  $(x "$r_copy")  ($(target "$r_copy" 0.25))
    Swing catch-up after the COPY: $(catchup "${DRAIN_COPY[@]}")
  one INSERT ... SELECT FROM generate_series, same seed both sides
  ($INS_CHECK; the SELECT alone takes $(fmt "$GEN_MS") ms)
    plain  $(per_s "$BULK_EVENTS" "$m_ins_p") events/s  [$(eps "${INS_PLAIN[@]}")]
    rtrec  $(per_s "$BULK_EVENTS" "$m_ins_r") events/s  [$(eps "${INS_RTREC[@]}")]
    ratio  $(x "$r_ins")
    Swing catch-up after the INSERT: $(catchup "${DRAIN_INS[@]}")
  state after the last bulk statement (rtrec INSERT ... SELECT): $STATE_ROWS
EOF
want single && cat <<EOF

Single-row: pgbench -n -M prepared -c $SINGLE_CLIENTS -j $PGBENCH_THREADS -T $DURATION, one INSERT per transaction
    plain  $(fmt "$m_sr_p") tps  [$(tpsl "${SR_PLAIN[@]}")]
    rtrec  $(fmt "$m_sr_r") tps  [$(tpsl "${SR_RTREC[@]}")]
    ratio  $(x "$r_sr")  ($(target "$r_sr" 0.5))
    Swing catch-up after each rtrec run: $(catchup "${DRAIN_SR[@]}")
EOF
want hot && cat <<EOF

Hot item: pgbench -n -M prepared -c $HOT_CLIENTS -j $PGBENCH_THREADS -T $DURATION into rtrec.events, items random(1, $HOT_ITEMS),
          against the same with items zipfian over 1..$N_ITEMS, alternating
    hot            $(fmt "$m_hot") tps  [$(tpsl "${HOT[@]}")]
    zipfian        $(fmt "$m_uni8") tps  [$(tpsl "${UNI8[@]}")]
    ratio hot / zipfian, both 8 clients          $(x "$r_hot8")  ($(target "$r_hot8" 0.5))
    ratio hot (8 clients) / zipfian (2 clients)  $(x "$r_hot2")
    Swing catch-up after hot runs: $(catchup "${DRAIN_HOT[@]}")
    Swing catch-up after zipfian runs: $(catchup "${DRAIN_UNI8[@]}")
EOF
cat <<EOF

Correctness after all runs: $N_EVENTS events in rtrec.events
    SELECT count(*) FROM rtrec_verify()  ->  $VERIFY $( [ "$VERIFY" = 0 ] && echo "(consistent)" || echo "(INCONSISTENT)")
    backend crashes during the benchmark: $N_CRASHES$( [ "$N_CRASHES" = 0 ] || echo "  (server log: bench/out/ingest-$STAMP-server.log)")
EOF
} | tee "$REPORT"
if [ "$N_CRASHES" != 0 ]; then
	cp "$TMP/server.log" "$OUT_DIR/ingest-$STAMP-server.log"
fi
log "report written to $REPORT"
