#!/usr/bin/env bash
# scripts/fuzz.sh: random API calls and event streams against a throwaway
# cluster; errors are fine, crashes are not.
#
#   sudo scripts/fuzz.sh                          3 minutes, 2 sessions
#   sudo scripts/fuzz.sh --seconds 60 --sessions 3 --seed 42
#   sudo scripts/fuzz.sh --rounds 5 --calls 200   a fixed amount of work
#   sudo scripts/fuzz.sh --skip truncate,train    all kinds of calls but these
#   sudo scripts/fuzz.sh --head                   rtrec built from the committed HEAD
#   sudo scripts/fuzz.sh --system                 no private snapshot (see below)
#
# The server runs in a temporary directory (loopback and a private unix
# socket only) as an unprivileged user (postgres, or the caller when not
# root), with restart_after_crash = off, so that a crashed backend takes the
# whole server down where nobody can miss it.  Each round, every session runs
# CALL fuzz.run(seed, calls, session) (scripts/fuzz.sql: calls to
# rtrec_recommend, rtrec_similar, rtrec_candidates, rtrec_trending,
# rtrec_train, rtrec.swing_compute and other internals with NULLs, 0,
# negatives, INT_MAX, -2^63, huge n and random ids; INSERTs of random event
# streams with unknown types, NULLs, infinite, ancient and future times,
# multi-row and 70000-row batches; valid and invalid changes of settings,
# weights, event types and the catalog; rtrec_swing_refresh / rtrec_rebuild /
# rtrec_verify in between), and a COPY of random rows, some malformed, runs
# beside them.  Every kind of call runs unless --skip names it.
#
# The server's postgres binary and rtrec's files come from a private snapshot
# of the installation in the temporary directory (bench/cluster.sh's), so
# that a `make install` by someone else cannot swap rtrec.so under it.  The
# snapshot copies the installed rtrec; --head (or RTREC_BUILD_HEAD=1) builds
# the committed HEAD (git archive) into it instead, leaving the system
# installation alone (scripts/fuzz.sql still comes from the working tree);
# --system runs the system installation, without a snapshot.
#
# At the end it checks that the server never crashed or restarted: the
# postmaster and its start time are the same, no session lost its
# connection, and the server log has no "terminated by signal", no
# "exited with exit code" other than 0 and 1, no PANIC.  (A crash restart
# with restart_after_crash = on keeps pg_postmaster_start_time, so that
# alone would not do.)  Then, after a final rtrec_swing_refresh(),
# rtrec_verify() must be empty; if a setting, event type or catalog change
# that applies to the past only after a rebuild succeeded since the last
# rebuild, it runs rtrec_rebuild() first, as the contract says.  It also
# compares rtrec.cf_neighbors with a recomputation (reported, not counted:
# rtrec_verify() does not cover it).
#
# Prints the number of calls, the errors by SQLSTATE, the internal errors
# (class XX) with their messages, errors the refresh worker logged, and
# PASS or FAIL as the last line; the exit status is 0 on PASS.
#
# Environment: PG_CONFIG (default PostgreSQL 15's), RTREC_FUZZ_KEEP=1 keeps
# the temporary directory (cluster stopped) for inspection.

set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export LC_ALL=C

SECONDS_BUDGET=180
ROUNDS=0
CALLS=100
SESSIONS=2
SEED=$(( $(date +%s) % 100000 ))
SKIP=
while [ $# -gt 0 ]; do
	case "$1" in
		--seconds) SECONDS_BUDGET=$2; shift 2 ;;
		--rounds) ROUNDS=$2; shift 2 ;;
		--calls) CALLS=$2; shift 2 ;;
		--sessions) SESSIONS=$2; shift 2 ;;
		--seed) SEED=$2; shift 2 ;;
		--skip) SKIP=$2; shift 2 ;;
		--head) export RTREC_BUILD_HEAD=1; shift ;;
		--system) export RTREC_PRIVATE_INSTALL=0; shift ;;
		-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
		*) echo "fuzz.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'fuzz.sh: %s\n' "$*" >&2; echo "FAIL: $*"; exit 1; }

[ -x "$PG_CONFIG" ] || die "pg_config not found at $PG_CONFIG (set PG_CONFIG)"
BINDIR=$("$PG_CONFIG" --bindir)
[ "${RTREC_BUILD_HEAD:-0}" = 1 ] || [ -f "$("$PG_CONFIG" --pkglibdir)/rtrec.so" ] \
	|| die "rtrec is not installed (make && sudo make install, or --head)"

# shellcheck source=bench/cluster.sh
. "$REPO/bench/cluster.sh"	# rtrec_as_pg, rtrec_server_binaries
RUN_USER=$(rtrec_run_user) || die "user postgres does not exist"
as_user() { rtrec_as_pg "$@"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtrec-fuzz.XXXXXX")
DATA="$TMP/data"
SOCK="$TMP/sock"
LOG="$TMP/server.log"
mkdir -p "$SOCK" "$TMP/out"
cp "$REPO/scripts/fuzz.sql" "$TMP/fuzz.sql"
[ "$(id -u)" = 0 ] && chown -R "$RUN_USER": "$TMP"
chmod 700 "$TMP"

STARTED=0
cleanup()
{
	local rc=$?
	set +e
	trap - EXIT INT TERM
	[ "$STARTED" = 1 ] && as_user "$SRVBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1
	if [ "${RTREC_FUZZ_KEEP:-0}" = 1 ]; then
		echo "fuzz.sh: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# the server's binaries: a private snapshot in $TMP/inst, made by bench/cluster.sh
rtrec_server_binaries "$TMP"
SRVBIN=$RTREC_SRVBIN
if [ "$RTREC_PRIVATE_INSTALL" = 1 ]; then
	say "private snapshot in $TMP/inst: $(rtrec_installed_id)"
fi

say "initdb"
as_user "$SRVBIN/initdb" -D "$DATA" -A trust -E UTF8 --no-locale --no-sync >"$TMP/initdb.log" 2>&1 \
	|| { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF

# rtrec fuzz cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
fsync = off
synchronous_commit = off
full_page_writes = off
restart_after_crash = off
max_connections = 40
log_line_prefix = '%m [%p] %b %q%a '
log_min_messages = warning
log_min_error_statement = panic
EOF

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=
for _ in 1 2 3 4 5 6 7 8; do
	candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
	port_in_use "$candidate" && continue
	if as_user "$SRVBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "-p $candidate" start >/dev/null 2>&1; then
		PORT=$candidate
		STARTED=1
		break
	fi
done
[ -n "$PORT" ] || die "could not start the cluster"

PSQL=(as_user env PGHOST="$SOCK" PGPORT="$PORT" PGDATABASE=fuzz "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1)
q() { "${PSQL[@]}" -At -c "$1"; }
# rows of rtrec.cf_neighbors that differ from a recomputation (rtrec_verify()
# checks only the Swing lists)
cf_diffs()
{
	q "SET statement_timeout = 0;
		SELECT count(*) FROM rtrec.cf_neighbors s
		  FULL JOIN (SELECT * FROM rtrec.neighbors_compute_part(0, 1,
						(SELECT value::integer FROM rtrec.config WHERE name = 'swing_neighbors'))
					  WHERE kind = 'cf') r ON r.item_id = s.item_id AND r.neighbor_id = s.neighbor_id
		 WHERE s.item_id IS NULL OR r.item_id IS NULL OR NOT rtrec.close_enough(s.score, r.score) OR s.rank <> r.rank"
}

as_user env PGHOST="$SOCK" PGPORT="$PORT" "$BINDIR/createdb" fuzz
"${PSQL[@]}" >/dev/null <<EOF
CREATE EXTENSION rtrec;
INSERT INTO rtrec.items (item_id, category_id, price, brand)
	SELECT i, i % 6 + 1, i * 1.25, 'brand' || (i % 5) FROM generate_series(1, 80) i;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT u, (u * 7 + k) % 80 + 1, (ARRAY['view', 'click', 'like', 'cart', 'purchase', 'impression'])[k % 6 + 1],
		   timestamptz '2024-01-01 00:00:00+00' + make_interval(mins => u * 17 + k)
	  FROM generate_series(1, 60) u, generate_series(0, 9) k;
\i $TMP/fuzz.sql
EOF
if [ -n "$SKIP" ]; then
	for k in ${SKIP//,/ }; do q "INSERT INTO fuzz.skip VALUES ('$k')" >/dev/null; done
fi
PM_PID=$(head -n 1 "$DATA/postmaster.pid")
PM_START=$(q "SELECT pg_postmaster_start_time()")
say "cluster on port $PORT, postmaster $PM_PID; seed $SEED, $SESSIONS sessions x $CALLS calls per round" \
	"$([ "$ROUNDS" -gt 0 ] && echo "$ROUNDS rounds" || echo "for ${SECONDS_BUDGET}s")${SKIP:+, skipping $SKIP}"

# COPY of random rows; one bad row in about half of them.  Prints the
# SQLSTATE (00000 when it succeeded).
copy_round()
{
	local seed=$1 out="$TMP/out/copy.$1" rows bad
	rows=$(( (seed * 7919) % 3 == 0 ? 2000 : (seed % 200) + 1 ))
	bad=$(( seed % 2 ))
	awk -v seed="$seed" -v rows="$rows" -v bad="$bad" 'BEGIN {
		srand(seed);
		split("view click like cart purchase impression", types, " ");
		badrow = bad ? int(rand() * rows) + 1 : 0;
		for (r = 1; r <= rows; r++) {
			u = int(rand() * 60) + 1; i = int(rand() * 90) + 1; t = types[int(rand() * 6) + 1];
			ts = sprintf("2024-%02d-%02d %02d:%02d:%02d+00", int(rand() * 2) + 1, int(rand() * 28) + 1,
						 int(rand() * 24), int(rand() * 60), int(rand() * 60));
			if (r == badrow) {
				k = int(rand() * 9);
				if (k == 0) u = "abc";
				else if (k == 1) u = "\\N";
				else if (k == 2) i = "99999999999999999999";
				else if (k == 3) t = "no_such_type";
				else if (k == 4) ts = "notatime";
				else if (k == 5) ts = "infinity";
				else if (k == 6) { print u "\t" i; continue }
				else if (k == 7) { print u "\t" i "\t" t "\t" ts "\textra"; continue }
				else t = "\\N";
			}
			print u "\t" i "\t" t "\t" ts;
		}
	}' >"$out.data"
	[ "$(id -u)" = 0 ] && chown "$RUN_USER" "$out.data"
	if as_user env PGHOST="$SOCK" PGPORT="$PORT" PGDATABASE=fuzz "$BINDIR/psql" -X -q -v VERBOSITY=verbose \
		-c "COPY rtrec.events (user_id, item_id, event_type, ts) FROM STDIN" <"$out.data" >"$out.log" 2>&1; then
		echo "00000 $rows"
	else
		echo "$(sed -n 's/^ERROR: *\([0-9A-Z]\{5\}\):.*/\1/p' "$out.log" | head -n 1 | grep . || echo CONN) $rows"
	fi
}

# true if the server is still the one we started, and no backend crashed
server_ok()
{
	[ -f "$DATA/postmaster.pid" ] && [ "$(head -n 1 "$DATA/postmaster.pid")" = "$PM_PID" ] \
		&& kill -0 "$PM_PID" 2>/dev/null \
		&& ! grep -qE 'terminated by signal|was terminated by exception|exited with exit code ([2-9]|[1-9][0-9])|PANIC|all server processes terminated' "$LOG"
}

T_START=$(date +%s)
round=0
LOST=0
while :; do
	round=$((round + 1))
	if [ "$ROUNDS" -gt 0 ]; then
		[ "$round" -gt "$ROUNDS" ] && break
	elif [ $(( $(date +%s) - T_START )) -ge "$SECONDS_BUDGET" ]; then
		break
	fi
	pids=()
	for s in $(seq 1 "$SESSIONS"); do
		seed_f=$(awk -v a="$SEED" -v r="$round" -v s="$s" 'BEGIN { x = ((a * 1000003 + r * 7919 + s * 104729) % 1000000) / 1000000.0; printf "%.6f", x * 2 - 1 }')
		as_user env PGHOST="$SOCK" PGPORT="$PORT" PGDATABASE=fuzz \
			PGOPTIONS="-c statement_timeout=120s -c lock_timeout=60s" "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
			-c "CALL fuzz.run($seed_f, $CALLS, $s)" >"$TMP/out/s$s.r$round.out" 2>"$TMP/out/s$s.r$round.err" &
		pids+=($!)
	done
	copy_result=$(copy_round $((SEED + round)))
	q "INSERT INTO fuzz.log VALUES (0, $round, 'copy', 'COPY of ${copy_result#* } rows', '${copy_result%% *}', NULL, now(), now())" \
		>/dev/null 2>&1 || true
	for i in "${!pids[@]}"; do
		if ! wait "${pids[$i]}"; then
			s=$((i + 1))
			if grep -qE 'server closed the connection|connection to server was lost|terminating connection' "$TMP/out/s$s.r$round.err"; then
				LOST=$((LOST + 1))
				echo "session $s lost its connection in round $round; its last call:"
				grep 'fuzz call' "$TMP/out/s$s.r$round.err" | tail -n 1 | cut -c1-2000
			else
				echo "session $s of round $round ended with an error:"
				tail -n 5 "$TMP/out/s$s.r$round.err"
			fi
		fi
	done
	server_ok || break
	printf '.'
done
echo
ELAPSED=$(( $(date +%s) - T_START ))

FAIL=()
if ! server_ok; then
	FAIL+=("the server crashed or restarted")
	echo "----- server log: crash reports -----"
	grep -E -A2 'terminated by signal|was terminated by exception|exited with exit code|PANIC' "$LOG" | head -n 30
	# the crashed backend's session, from "Failed process was running: CALL fuzz.run(seed, calls, session)"
	crashed=$(sed -n 's/.*Failed process was running: CALL fuzz\.run([^,]*, *[0-9]*, *\([0-9]*\)).*/\1/p' "$LOG" | head -n 1)
	if [ -n "$crashed" ]; then
		echo "the call that crashed the server (session $crashed, round $round):"
		grep 'fuzz call' "$TMP/out/s$crashed.r$round.err" 2>/dev/null | tail -n 1 | sed 's/^NOTICE: *//' | cut -c1-2000
	fi
fi
[ "$LOST" = 0 ] || FAIL+=("$LOST sessions lost their connection")

if "${PSQL[@]}" -c "SELECT 1" >/dev/null 2>&1; then
	[ "$(q "SELECT pg_postmaster_start_time()")" = "$PM_START" ] || FAIL+=("pg_postmaster_start_time changed")

	echo "----- calls -----"
	q "SELECT count(*) || ' calls in $ELAPSED s (' || count(*) FILTER (WHERE kind = 'copy') || ' COPYs), '
			  || count(*) FILTER (WHERE sqlstate = '00000') || ' succeeded'
		 FROM fuzz.log"
	q "SELECT 'by kind: ' || string_agg(kind || ' ' || n, ', ' ORDER BY kind)
		 FROM (SELECT kind, count(*) AS n FROM fuzz.log GROUP BY kind) k" | fold -s -w 100
	echo "----- errors by SQLSTATE -----"
	"${PSQL[@]}" -c "SELECT sqlstate, count(*) AS errors, string_agg(DISTINCT kind, ' ') AS kinds,
			min(left(message, 90)) AS example
		FROM fuzz.log WHERE sqlstate <> '00000' GROUP BY sqlstate ORDER BY count(*) DESC"
	echo "----- the slowest kinds of calls -----"
	"${PSQL[@]}" -c "SELECT kind, count(*) AS calls, round(sum(extract(epoch FROM finished - started))::numeric, 1) AS total_s,
			round(max(extract(epoch FROM finished - started))::numeric, 1) AS max_s
		FROM fuzz.log GROUP BY kind ORDER BY sum(finished - started) DESC LIMIT 6"
	internal=$(q "SELECT count(*) FROM fuzz.log WHERE sqlstate LIKE 'XX%'")
	if [ "$internal" != 0 ]; then
		FAIL+=("$internal internal errors (SQLSTATE class XX)")
		echo "----- internal errors (class XX): can't-happen cases, bugs -----"
		"${PSQL[@]}" -c "SELECT sqlstate, message, count(*), min(left(sql, 300)) AS example
			FROM fuzz.log WHERE sqlstate LIKE 'XX%' GROUP BY 1, 2 ORDER BY 3 DESC"
	fi

	echo "----- final consistency -----"
	q "SET statement_timeout = 0; SELECT 'rtrec_swing_refresh() rewrote ' || rtrec_swing_refresh() || ' lists'"
	v1=$(q "SELECT count(*) FROM rtrec_verify()")
	changed=$(q "SELECT coalesce((SELECT max(l.finished) FROM fuzz.log l JOIN fuzz.kinds k USING (kind)
									 WHERE k.needs_rebuild AND l.sqlstate = '00000')
								 > coalesce((SELECT max(l.started) FROM fuzz.log l
											 WHERE l.kind IN ('rebuild', 'retention') AND l.sqlstate = '00000'),
											'-infinity'), false)")
	cf1=$(cf_diffs)
	echo "rtrec_verify() after the final refresh: $v1 differences"
	if [ "$v1" != 0 ]; then
		if [ "$changed" = t ]; then
			echo "  (a setting, event type or catalog change succeeded since the last rebuild: rebuilding)"
		else
			FAIL+=("rtrec_verify() found $v1 differences with no change pending a rebuild")
			"${PSQL[@]}" -c "SELECT * FROM rtrec_verify() LIMIT 15"
		fi
	fi
	# the incremental path once more on top of a rebuild: both must be exact
	q "SET statement_timeout = 0; SELECT rtrec_rebuild()" >/dev/null
	q "INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
		SELECT u, (u * 11 + k) % 90 + 1, 'purchase', timestamptz '2024-02-15 00:00:00+00' + make_interval(mins => u + k)
		  FROM generate_series(1, 60) u, generate_series(0, 2) k" >/dev/null
	q "SET statement_timeout = 0; SELECT rtrec_swing_refresh()" >/dev/null
	v2=$(q "SELECT count(*) FROM rtrec_verify()")
	echo "rtrec_verify() after rtrec_rebuild(), more events and a refresh: $v2 differences"
	if [ "$v2" != 0 ]; then
		FAIL+=("rtrec_verify() found $v2 differences after a rebuild and a refresh")
		"${PSQL[@]}" -c "SELECT * FROM rtrec_verify() LIMIT 15"
	fi
	cf2=$(cf_diffs)
	echo "rtrec.cf_neighbors vs recomputation (not covered by rtrec_verify(), reported only):" \
		"$cf1 differences after the final refresh$([ "$changed" = t ] && echo ' (settings changed since the last rebuild)'), $cf2 after the rebuild and refresh"
else
	FAIL+=("the server does not accept connections")
fi

worker_errors=$(grep -cE 'background worker "rtrec swing refresher".*exited with exit code 1' "$LOG" || true)
echo "refresh worker exits with an error: $worker_errors"
if [ "$worker_errors" != 0 ]; then
	grep -E 'rtrec swing refresher.*(ERROR|FATAL)' "$LOG" | sed -E 's/^[^]]*\] [^ ]+ //' | sort | uniq -c | sort -rn | head -n 10
fi
server_ok || { [ "${#FAIL[@]}" -gt 0 ] || FAIL+=("the server log reports a crash"); }

echo
if [ "${#FAIL[@]}" = 0 ]; then
	echo "PASS: no crash, no restart, rtrec_verify() empty (seed $SEED)"
	exit 0
fi
printf 'FAIL: %s (seed %s)\n' "$(IFS=';'; echo "${FAIL[*]}")" "$SEED"
exit 1
