#!/usr/bin/env bash
# bench/latency.sh: the "Latency and scale" protocol of BENCH.md, on a
# throwaway cluster (bench/cluster.sh).
#
# Workloads: real data sets replicated with id offsets (copy k gets
# user_id + k*10^7 and item_id + k*10^7, categories shared; bench/workload.py):
#   sparse  Taobao UserBehavior (window-filtered, 84k events; weights
#           pv=1,fav=2,cart=3,buy=4): 1 copy (~84k) and 12 copies (~1.01M)
#   dense   MovieLens latest-small (101k ratings, every rating_* weight 1,
#           category = first genre): 1 copy (~101k) and 10 copies (~1.01M)
# Each level: a fresh database, one COPY of all events (ts order), then
# rtrec_rebuild() and VACUUM ANALYZE (times reported), then pgbench with
# 2 clients (-j 2, -M prepared) for --duration seconds, after a --warmup run:
#   SELECT * FROM rtrec_recommend(<random active user>, 20)
#   SELECT * FROM rtrec_similar(<random active item>, 20)
# where active = at least one interaction; the user / item is drawn uniformly
# from bench.active_users / bench.active_items by pgbench's random().
# p50 / p99 come from pgbench's per-transaction log (--log), tps from its
# summary.  A growth table compares the levels.  The reference (hand-written
# SQL item-CF on the dense workload, measured elsewhere): p50 ~230 ms,
# p99 ~460 ms.  Report: bench/out/latency-<date>.txt.
#
# Usage: bench/latency.sh [options]
#   --duration N        seconds per pgbench run (default 30)
#   --warmup N          seconds of unmeasured warm-up before each run (default 5)
#   --clients N         pgbench clients (default 2)
#   --sparse "1 12"     copies of Taobao per level
#   --dense "1 10"      copies of MovieLens per level (e.g. "1 10 100" for ~10M)
#   --only NAME         sparse or dense
#   --no-similar        skip the rtrec_similar runs
#   --settings S        'name=value,...' for rtrec.config before loading
#   --data DIR          data folder (default /work/shared/data, or $RTREC_DATA)
#   --no-build          use the installed extension as is (default: make && make install)
#   --head              build the committed HEAD into the cluster's private snapshot
#   --keep              leave the cluster running at the end
set -euo pipefail

DATA_DIR=${RTREC_DATA:-/work/shared/data}
DURATION=30
WARMUP=5
CLIENTS=2
SPARSE_LEVELS="1 12"
DENSE_LEVELS="1 10"
ONLY=
SIMILAR=1
SETTINGS=
BUILD=1
while [ $# -gt 0 ]; do
	case "$1" in
		--duration) DURATION="${2:?}"; shift 2 ;;
		--warmup) WARMUP="${2:?}"; shift 2 ;;
		--clients) CLIENTS="${2:?}"; shift 2 ;;
		--sparse) SPARSE_LEVELS="${2?}"; shift 2 ;;
		--dense) DENSE_LEVELS="${2?}"; shift 2 ;;
		--only) ONLY="${2:?}"; shift 2 ;;
		--no-similar) SIMILAR=0; shift ;;
		--settings) SETTINGS="${2:?}"; shift 2 ;;
		--data) DATA_DIR="${2:?}"; shift 2 ;;
		--no-build) BUILD=0; shift ;;
		--head) BUILD=0; export RTREC_BUILD_HEAD=1; shift ;;
		--keep) export RTREC_CLUSTER_KEEP=1; shift ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
	esac
done
case "$DURATION$WARMUP$CLIENTS" in *[!0-9]*) echo "--duration, --warmup and --clients take whole numbers" >&2; exit 2 ;; esac
case "$ONLY" in ""|sparse|dense) ;; *) echo "--only takes sparse or dense" >&2; exit 2 ;; esac
[ "$ONLY" = sparse ] && DENSE_LEVELS=
[ "$ONLY" = dense ] && SPARSE_LEVELS=

. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
rtrec_bench_data "$DATA_DIR"

[ "$BUILD" = 1 ] && rtrec_build_install
rtrec_cluster_start
PGBENCH="$RTREC_PGBIN/pgbench"
WORK="$RTREC_TMP/pgb"
mkdir -p "$WORK"

# percentiles (ms) of the latency column (3rd, microseconds) of pgbench logs: "p50 p99 n"
log_percentiles() {
	cat "$@" | "$PY" -c '
import sys, math
v = sorted(int(l.split()[2]) for l in sys.stdin if l.strip())
def p(q):
    return v[max(0, min(len(v) - 1, int(math.ceil(q / 100.0 * len(v))) - 1))] / 1000.0
print("%.2f %.2f %d" % (p(50), p(99), len(v)) if v else "nan nan 0")'
}

# runs a pgbench script; prints "p50 p99 tps n failed"
run_pgbench() {	# $1 db, $2 script, $3 label
	local db="$1" script="$2" label="$3" out tps failed pr
	if [ "$WARMUP" -gt 0 ]; then
		"$PGBENCH" -n -M prepared -f "$script" -c "$CLIENTS" -j "$CLIENTS" -T "$WARMUP" "$db" >/dev/null 2>&1 \
			|| rtrec_log "WARNING: warm-up of $label failed"
	fi
	rm -f "$WORK"/pgbench_log*
	out=$(cd "$WORK" && "$PGBENCH" -n -M prepared -f "$script" -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" \
		--log --log-prefix="$WORK/pgbench_log" "$db" 2>&1) || { echo "$out" >&2; rtrec_die "pgbench failed ($label)"; }
	tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*without initial connection time.*/\1/p')
	failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
	[ -n "$tps" ] || { echo "$out" >&2; rtrec_die "no tps in pgbench output ($label)"; }
	pr=$(log_percentiles "$WORK"/pgbench_log*)
	set -- $pr
	rtrec_log "  $label: p50 $1 ms, p99 $2 ms, $tps tps ($3 calls, ${failed:-0} failed)"
	echo "$1 $2 $tps $3 ${failed:-0}"
}

STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$RTREC_ROOT/bench/out"
mkdir -p "$OUT"
REPORT="$OUT/latency-$STAMP.txt"
ROWS=()	# "workload copies events users items copy_s rebuild_s analyze_s swing db_mb r50 r99 rtps s50 s99 stps"

level() {	# $1 workload name, $2 copies, then workload.py data options
	local name="$1" copies="$2"; shift 2
	local db="lat_${name}_${copies}" kv
	rtrec_log "$name x$copies: loading"
	rtrec_createdb "$db"
	rtrec_db_has_function "$db" rtrec_recommend || rtrec_die "rtrec_recommend() is not in the installed extension yet"
	kv=$("$PY" "$RTREC_ROOT/bench/workload.py" --dsn "$(rtrec_dsn "$db")" --copies "$copies" \
		${SETTINGS:+--settings "$SETTINGS"} "$@") || rtrec_die "loading $name x$copies failed"
	local events users items copy_s rebuild_s analyze_s swing_rows swing_items db_mb items_s catalog
	eval "$kv"	# events=... users=... (numbers only)
	rtrec_log "$name x$copies: $events events, $users users, $items items; COPY $copy_s s, rebuild $rebuild_s s, VACUUM ANALYZE $analyze_s s; $swing_rows Swing rows, $db_mb MB"
	cat >"$WORK/rec.sql" <<EOF
\\set r random(1, $users)
SELECT * FROM rtrec_recommend((SELECT user_id FROM bench.active_users WHERE idx = :r), 20);
EOF
	cat >"$WORK/sim.sql" <<EOF
\\set r random(1, $items)
SELECT * FROM rtrec_similar((SELECT item_id FROM bench.active_items WHERE idx = :r), 20);
EOF
	local rec sim="nan nan nan 0 0"
	rec=$(run_pgbench "$db" "$WORK/rec.sql" "$name x$copies rtrec_recommend")
	[ "$SIMILAR" = 1 ] && sim=$(run_pgbench "$db" "$WORK/sim.sql" "$name x$copies rtrec_similar")
	ROWS+=("$name $copies $events $users $items $copy_s $rebuild_s $analyze_s $swing_rows $db_mb $rec $sim")
	rtrec_dropdb "$db" >/dev/null
}

for c in $SPARSE_LEVELS; do
	level sparse "$c" --csv "$TAOBAO" --weights 'pv=1,fav=2,cart=3,buy=4' --window 1511539200:1512316800
done
for c in $DENSE_LEVELS; do
	level dense "$c" --csv "$ML" --items "$ML_ITEMS" --weights 'rating_*=1'
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a == a + 0) printf "%.2fx", a / b; else print "n/a" }'; }

{
cat <<EOF
rtrec latency and scale (BENCH.md, "Latency and scale")
date         $(date -Is)
build        commit $(git -C "$RTREC_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$( [ -n "$(git -C "$RTREC_ROOT" status --porcelain -- src rtrec--1.0.sql 2>/dev/null)" ] && echo " (working tree: src or SQL differ from HEAD)")$( [ "${RTREC_BUILD_HEAD:-0}" = 1 ] && echo ", built from HEAD")
             $(rtrec_installed_id)
server       $(rtrec_sql_value postgres "SELECT version()")
machine      $(nproc) CPUs ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)), $(free -g | awk '/^Mem:/ { print $2 " GB RAM" }'), shared with other work
settings     shared_buffers=1GB synchronous_commit=off max_connections=50 max_worker_processes=16${SETTINGS:+; rtrec.config: $SETTINGS}
workloads    replicated real data, copy k: user_id + k*10^7, item_id + k*10^7, categories shared
             sparse = Taobao UserBehavior (window 1511539200 <= ts < 1512316800), weights pv=1,fav=2,cart=3,buy=4
             dense  = MovieLens latest-small, every rating_* weight 1, category = first genre
load         one COPY of all events in ts order, then rtrec_rebuild(), then VACUUM ANALYZE
calls        pgbench -n -M prepared -c $CLIENTS -j $CLIENTS -T $DURATION (after a ${WARMUP} s warm-up), one call per transaction:
               SELECT * FROM rtrec_recommend(<user>, 20)   user uniform over users with an interaction
               SELECT * FROM rtrec_similar(<item>, 20)     item uniform over items with an interaction
             latency percentiles from pgbench's per-transaction log (--log); tps without connection time

EOF
printf '%-7s %6s %9s %7s %7s %8s %9s %8s %9s %7s | %-26s | %-26s\n' workload copies events users items "COPY s" "rebuild s" "VACUUM s" "swing rows" "db MB" \
	"recommend p50/p99 ms, tps" "similar p50/p99 ms, tps"
for row in "${ROWS[@]}"; do
	set -- $row
	printf '%-7s %6s %9s %7s %7s %8s %9s %8s %9s %7s | %8s %8s %8s | %8s %8s %8s\n' \
		"$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}" "${11}" "${12}" "$(printf %.0f "${13}")" \
		"${16}" "${17}" "$(printf %.0f "${18}" 2>/dev/null || echo nan)"
done
echo
echo "Growth (largest level / smallest level of each workload):"
for w in sparse dense; do
	first= last=
	for row in "${ROWS[@]}"; do
		set -- $row
		[ "$1" = "$w" ] || continue
		[ -z "$first" ] && first="$row"
		last="$row"
	done
	[ -n "$first" ] && [ "$first" != "$last" ] || continue
	set -- $first; f=("$@")
	set -- $last; l=("$@")
	printf '  %-6s x%s -> x%s: events %s, COPY %s, rebuild %s, recommend p50 %s p99 %s tps %s, similar p50 %s p99 %s tps %s\n' \
		"$w" "${f[1]}" "${l[1]}" "$(ratio "${l[2]}" "${f[2]}")" "$(ratio "${l[5]}" "${f[5]}")" "$(ratio "${l[6]}" "${f[6]}")" \
		"$(ratio "${l[10]}" "${f[10]}")" "$(ratio "${l[11]}" "${f[11]}")" "$(ratio "${l[12]}" "${f[12]}")" \
		"$(ratio "${l[15]}" "${f[15]}")" "$(ratio "${l[16]}" "${f[16]}")" "$(ratio "${l[17]}" "${f[17]}")"
done
echo
echo "Reference (measured elsewhere, not in this run): hand-written SQL item-CF on the dense ~1M workload: p50 ~230 ms, p99 ~460 ms"
for row in "${ROWS[@]}"; do
	set -- $row
	[ "$1" = dense ] || continue
	echo "  dense x$2: rtrec_recommend p50 ${11} ms = $(ratio "${11}" 230) of the reference p50, p99 ${12} ms = $(ratio "${12}" 460) of the reference p99"
done
} | tee "$REPORT"
rtrec_log "report written to $REPORT"
