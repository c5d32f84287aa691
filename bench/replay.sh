#!/usr/bin/env bash
# bench/replay.sh: the next-item replay of BENCH.md on both shared data sets,
# on a throwaway cluster (bench/cluster.sh), with bench/replay.py.
#
#   Taobao UserBehavior   weights pv=1,fav=2,cart=3,buy=4, window
#                         1511539200 <= ts < 1512316800, all test events
#   MovieLens small       every rating_* weight 1, categories = first genre
#                         (items.csv), the first 1000 test events (--full: all)
# Each data set gets a fresh database; frozen mode runs first on the loaded
# state, then real-time.  The baselines from the issue are printed next to
# rtrec's figures.  Reports: bench/out/replay-<dataset>-<date>.txt, and a
# summary in bench/out/replay-summary-<date>.txt.
#
# Usage: bench/replay.sh [options]
#   --data DIR          data folder (default /work/shared/data, or $RTREC_DATA)
#   --full              MovieLens: all test events, not the first 1000
#   --only NAME         taobao or movielens
#   --mode M            realtime, frozen or both (default both)
#   --settings S        'name=value,...' for rtrec.config (both data sets)
#   --swing-refresh R   worker (default): real-time mode leaves Swing's queue to
#                       the background worker (the replay runs far faster than
#                       the data's real pace, so lists may lag; the queue length
#                       and age at the calls are reported); call: drain it with
#                       rtrec_swing_refresh() before every call (what a live
#                       system sees; much slower), see replay.py --help
#   --train N           after loading the history, fit the ranker with
#                       rtrec_train(N, true) (a replay of the history's newest
#                       events; the test period is never seen) and report it
#   --no-build          use the installed extension as is (default: make && make install)
#   --head              build the committed HEAD into the cluster's private snapshot
#                       (git archive; the system installation is left alone)
#   --keep              leave the cluster running at the end
# Environment: see bench/cluster.sh (RTREC_BENCH_PRE_SQL, RTREC_PRIVATE_INSTALL).
set -euo pipefail

DATA_DIR=${RTREC_DATA:-/work/shared/data}
FULL=0
ONLY=
MODE=both
SETTINGS=
SWING_REFRESH=worker
TRAIN=
BUILD=1
while [ $# -gt 0 ]; do
	case "$1" in
		--data) DATA_DIR="${2:?}"; shift 2 ;;
		--full) FULL=1; shift ;;
		--only) ONLY="${2:?}"; shift 2 ;;
		--mode) MODE="${2:?}"; shift 2 ;;
		--settings) SETTINGS="${2:?}"; shift 2 ;;
		--swing-refresh) SWING_REFRESH="${2:?}"; shift 2 ;;
		--train) TRAIN="${2:?}"; shift 2 ;;
		--no-build) BUILD=0; shift ;;
		--head) BUILD=0; export RTREC_BUILD_HEAD=1; shift ;;
		--keep) export RTREC_CLUSTER_KEEP=1; shift ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "unknown option: $1 (try --help)" >&2; exit 2 ;;
	esac
done
case "$ONLY" in ""|taobao|movielens) ;; *) echo "--only takes taobao or movielens" >&2; exit 2 ;; esac

. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
rtrec_bench_data "$DATA_DIR"

[ "$BUILD" = 1 ] && rtrec_build_install
rtrec_cluster_start
export RTREC_INSTALLED_ID="$(rtrec_installed_id)"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$RTREC_ROOT/bench/out"
mkdir -p "$OUT"
SUMMARY="$OUT/replay-summary-$STAMP.txt"
: >"$SUMMARY"

run() {	# $1 db name, then replay.py options
	local db="$1"; shift
	rtrec_createdb "$db"
	rtrec_db_has_function "$db" rtrec_recommend \
		|| rtrec_die "rtrec_recommend() is not in the installed extension yet"
	local log="$RTREC_TMP/$db.out"
	"$PY" "$RTREC_ROOT/bench/replay.py" --dsn "$(rtrec_dsn "$db")" --mode "$MODE" \
		--swing-refresh "$SWING_REFRESH" ${SETTINGS:+--settings "$SETTINGS"} ${TRAIN:+--train "$TRAIN"} "$@" | tee "$log"
	{ cat "$log"; echo; } >>"$SUMMARY"
	rtrec_dropdb "$db" >/dev/null
}

if [ -z "$ONLY" ] || [ "$ONLY" = taobao ]; then
	rtrec_log "Taobao UserBehavior"
	run replay_taobao --csv "$TAOBAO" --name taobao_userbehavior \
		--weights 'pv=1,fav=2,cart=3,buy=4' --window 1511539200:1512316800 \
		--baseline 'popular=0.0080' --baseline 'cosine item-CF=0.0075' \
		--baseline 'Swing=0.0164' --baseline 'Swing + c2i (best)=0.0399'
fi
if [ -z "$ONLY" ] || [ "$ONLY" = movielens ]; then
	rtrec_log "MovieLens latest-small"
	ML_MAX=(--max-test 1000)
	ML_NOTE="baselines were measured on the first 1000 test events"
	if [ "$FULL" = 1 ]; then
		ML_MAX=()
		ML_NOTE="--full: all test events; the baselines were measured on the first 1000 only"
	fi
	run replay_movielens --csv "$ML" --items "$ML_ITEMS" --name movielens_latest_small \
		--weights 'rating_*=1' "${ML_MAX[@]}" --note "$ML_NOTE" \
		--baseline 'popular=0.0390' --baseline 'Swing=0.0810' \
		--baseline 'Swing + c2i=0.0740' --baseline 'cosine item-CF (best)=0.1470'
fi
rtrec_log "summary of all runs written to $SUMMARY"
