#!/usr/bin/env bash
# scripts/valgrind.sh: run the pg_regress suite (sql/) against a PostgreSQL
# server running under valgrind memcheck, and report the valgrind errors
# whose stack passes through rtrec.
#
#   sudo scripts/valgrind.sh                  every test in sql/
#   sudo scripts/valgrind.sh ingest swing     only these tests
#   sudo scripts/valgrind.sh --head ...       rtrec of the committed HEAD (git
#                                             archive), built into the snapshot
#   sudo scripts/valgrind.sh --install ...    build and install rtrec first
#   sudo scripts/valgrind.sh --system ...     no snapshot: the system installation
#
# The server is a throwaway cluster in a temporary directory (loopback and a
# private unix socket only), run by an unprivileged user (postgres, or the
# caller when not root) as
#   valgrind --trace-children=yes --leak-check=no --error-markers=... \
#            [--suppressions=<PostgreSQL's valgrind.supp>] postgres -D ...
# The postgres binary and rtrec's files come from a private snapshot of the
# installation in that directory (bench/cluster.sh's), so that a `make
# install` by someone else during the long run cannot swap rtrec.so under the
# server.  The snapshot copies the installed rtrec, or with --head (or
# RTREC_BUILD_HEAD=1) builds the committed HEAD, whose sql/ and expected/ the
# tests then come from too; the working tree and the system installation are
# left alone.
# Every server process (backends, the rtrec refresh worker, parallel workers)
# logs to its own file.  PostgreSQL from the distribution is not built with
# USE_VALGRIND, so it reports errors of its own (padding bytes written to
# disk, and so on) and palloc'd memory is not poisoned when freed: what this
# finds in rtrec is reads of uninitialized memory, overruns past a malloc'd
# block, and bad syscall arguments.  Only errors with a frame in rtrec.so or
# in one of src/*.c are counted (but for writes of WAL buffers, see the
# analysis below); the others are summed up as noise.
#
# --error-exitcode is deliberately not used: it would change the exit status
# of every server child with a (PostgreSQL) error, and the postmaster takes
# an unexpected exit status for a crash and restarts everything.  The counts
# come from the logs instead.
#
# The last line printed is the summary; the exit status is 0 when no
# valgrind error has an rtrec frame and no server process crashed, 1
# otherwise (pg_regress differences are reported but do not count: timing
# under valgrind differs).
#
# Environment:
#   PG_CONFIG               pg_config of the server (default: PostgreSQL 15's)
#   RTREC_BUILD_HEAD=1      same as --head
#   VALGRIND_SUPP           suppression file (default: PostgreSQL's
#                           src/tools/valgrind.supp if found in PG_SRC or a
#                           few usual places; else none)
#   PG_SRC                  a PostgreSQL source tree to take valgrind.supp from
#   VALGRIND_OPTS           extra valgrind options, e.g. --track-origins=yes
#   RTREC_VALGRIND_KEEP=1   keep the temporary directory (logs) afterwards
#   RTREC_VALGRIND_TIMEOUT  seconds allowed for pg_regress (default 3600)

set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
TIMEOUT=${RTREC_VALGRIND_TIMEOUT:-3600}
export LC_ALL=C

say() { printf '==> %s\n' "$*"; }
die() { printf 'valgrind.sh: %s\n' "$*" >&2; exit 2; }

INSTALL=0
TESTS=()
for arg in "$@"; do
	case "$arg" in
		--install) INSTALL=1 ;;
		--head) export RTREC_BUILD_HEAD=1 ;;
		--system) export RTREC_PRIVATE_INSTALL=0 ;;
		-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
		-*) die "unknown option: $arg" ;;
		*) TESTS+=("${arg%.sql}") ;;
	esac
done
[ -x "$PG_CONFIG" ] || die "pg_config not found at $PG_CONFIG (set PG_CONFIG)"
BINDIR=$("$PG_CONFIG" --bindir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
PG_REGRESS="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
[ -x "$PG_REGRESS" ] || die "pg_regress not found at $PG_REGRESS"

if ! command -v valgrind >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "installing valgrind"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends valgrind </dev/null \
			|| die "apt-get install valgrind failed"
	else
		die "valgrind is not installed"
	fi
fi

if [ "$INSTALL" = 1 ]; then
	say "building and installing rtrec"
	make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" || die "build failed"
	make -C "$REPO" -s PG_CONFIG="$PG_CONFIG" install || die "make install failed (needs root)"
fi
[ "${RTREC_BUILD_HEAD:-0}" = 1 ] || [ -f "$PKGLIBDIR/rtrec.so" ] \
	|| die "rtrec is not installed (run with --install, as root, or --head)"

# the suppression file, if there is one
SUPP=${VALGRIND_SUPP:-}
if [ -z "$SUPP" ]; then
	for f in ${PG_SRC:+"$PG_SRC/src/tools/valgrind.supp"} \
		"$("$PG_CONFIG" --sharedir)/valgrind.supp" \
		/usr/share/postgresql/valgrind.supp \
		/usr/src/postgresql*/src/tools/valgrind.supp; do
		if [ -f "$f" ]; then SUPP=$f; break; fi
	done
fi

# the unprivileged user that runs the server
# shellcheck source=bench/cluster.sh
. "$REPO/bench/cluster.sh"	# rtrec_as_pg, rtrec_server_binaries
RUN_USER=$(rtrec_run_user) || die "user postgres does not exist"
as_user() { rtrec_as_pg "$@"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtrec-valgrind.XXXXXX")
DATA="$TMP/data"
SOCK="$TMP/sock"
VGLOG="$TMP/valgrind"
OUT="$TMP/regress"
mkdir -p "$SOCK" "$VGLOG" "$OUT"
[ -n "$SUPP" ] && cp "$SUPP" "$TMP/valgrind.supp" && SUPP="$TMP/valgrind.supp"
[ "$(id -u)" = 0 ] && chown -R "$RUN_USER": "$TMP"
chmod 700 "$TMP"

SERVER_PID=
cleanup()
{
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		as_user "$SRVBIN/pg_ctl" -D "$DATA" -m immediate -w -t 120 stop >/dev/null 2>&1
	fi
	if [ "${RTREC_VALGRIND_KEEP:-0}" = 1 ]; then
		echo "valgrind.sh: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# the server's binaries (SRVBIN) and the tests (TESTDIR): a private snapshot
# in $TMP/inst, made by bench/cluster.sh (with --head, HEAD is built in $TMP/src)
TESTDIR=$REPO
rtrec_server_binaries "$TMP"
SRVBIN=$RTREC_SRVBIN
if [ "$RTREC_PRIVATE_INSTALL" = 1 ]; then
	[ "${RTREC_BUILD_HEAD:-0}" = 1 ] && TESTDIR=$TMP/src
	say "private snapshot in $TMP/inst: $(rtrec_installed_id)"
fi

if [ "${#TESTS[@]}" -eq 0 ]; then
	for f in "$TESTDIR"/sql/*.sql; do
		[ -e "$f" ] && TESTS+=("$(basename "$f" .sql)")
	done
fi
[ "${#TESTS[@]}" -gt 0 ] || die "no tests in $TESTDIR/sql"
for t in "${TESTS[@]}"; do
	[ -f "$TESTDIR/sql/$t.sql" ] || die "no such test: $TESTDIR/sql/$t.sql"
done

say "initdb"
as_user "$SRVBIN/initdb" -D "$DATA" -A trust -E UTF8 --no-locale --no-sync >"$TMP/initdb.log" 2>&1 \
	|| { cat "$TMP/initdb.log" >&2; die "initdb failed"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=
for _ in 1 2 3 4 5 6 7 8; do
	candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
	if ! port_in_use "$candidate"; then PORT=$candidate; break; fi
done
[ -n "$PORT" ] || die "no free port"

cat >>"$DATA/postgresql.conf" <<EOF

# rtrec valgrind cluster
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 30
shared_buffers = 32MB
autovacuum = off
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
logging_collector = off
EOF

VG_ARGS=(--quiet --trace-children=yes --leak-check=no --num-callers=40
	--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
	--log-file="$VGLOG/%p.log")
[ -n "$SUPP" ] && VG_ARGS+=(--suppressions="$SUPP")
# shellcheck disable=SC2206
[ -n "${VALGRIND_OPTS:-}" ] && VG_ARGS+=($VALGRIND_OPTS)

say "starting postgres under valgrind (suppressions: ${SUPP:-none}) on port $PORT"
as_user env -u PGDATA sh -c 'exec "$@" >"$0" 2>&1' "$TMP/server.log" \
	valgrind "${VG_ARGS[@]}" "$SRVBIN/postgres" -D "$DATA" &
SERVER_PID=$!
for _ in $(seq 1 300); do
	if "$BINDIR/pg_isready" -q -h "$SOCK" -p "$PORT" 2>/dev/null; then break; fi
	kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "the server did not start"; }
	sleep 1
done
"$BINDIR/pg_isready" -q -h "$SOCK" -p "$PORT" || die "the server did not accept connections in 300 s"

say "pg_regress: ${TESTS[*]}"
T0=$(date +%s)
REGRESS_RC=0
as_user timeout -k 30 "$TIMEOUT" "$PG_REGRESS" \
	--inputdir="$TESTDIR" --outputdir="$OUT" --bindir="$BINDIR" \
	--host="$SOCK" --port="$PORT" --user="$RUN_USER" \
	--load-extension=rtrec --dbname=contrib_regression \
	"${TESTS[@]}" 2>&1 | tee "$TMP/regress.log" || REGRESS_RC=$?
T1=$(date +%s)

say "stopping the server (valgrind finishes every process's log)"
as_user "$SRVBIN/pg_ctl" -D "$DATA" -m fast -w -t 300 stop >/dev/null 2>&1 || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

#------------------------------------------------------------------------------
# Analysis
#------------------------------------------------------------------------------
# rtrec's own source files, to recognise its frames
SRC_RE=$(cd "$TESTDIR/src" && ls ./*.c 2>/dev/null | sed 's|^\./||; s|\.c$||' | paste -sd'|' -)
SRC_RE=${SRC_RE:-rtrec}

# Splits every log into error blocks (between the markers) and writes each
# block that has an rtrec frame to $TMP/rtrec_errors.txt; prints
# "<total> <rtrec> <wal>" on stdout.  A write of WAL buffers (pwrite64 below
# XLogWrite, reached from XLogInsert or XLogFlush) is counted apart: the
# server's WAL pages hold bytes this unpatched PostgreSQL never initialised
# (alignment gaps of records), and it reports them at commit and at startup
# with no rtrec frame at all; when the buffers fill up during rtrec's insert,
# the same report merely has rtrec further up its stack.
awk -v src_re="($SRC_RE)\\.c:[0-9]+" -v out="$TMP/rtrec_errors.txt" '
	/VALGRINDERROR-BEGIN/ { inblock = 1; block = FILENAME "\n"; next }
	/VALGRINDERROR-END/ {
		if (inblock) {
			total++
			if (block ~ /Syscall param pwrite64\(buf\) points to uninitialised/ &&
				block ~ /XLog(InsertRecord|Flush|BackgroundFlush)/)
				wal++
			else if (block ~ /rtrec\.so/ || block ~ src_re) { rtrec++; print block > out }
		}
		inblock = 0; next
	}
	inblock { block = block $0 "\n" }
	END { printf "%d %d %d\n", total, rtrec, wal }
' "$VGLOG"/*.log >"$TMP/counts" 2>/dev/null || echo "0 0 0" >"$TMP/counts"
read -r TOTAL RTREC WAL <"$TMP/counts"
: >>"$TMP/rtrec_errors.txt"

# distinct rtrec errors: the kind and the first rtrec frame
DISTINCT=$(awk -v src_re="($SRC_RE)\\.c:[0-9]+" '
	/^==[0-9]+== [A-Z]/ && !kind { kind = $0; sub(/^==[0-9]+== /, "", kind) }
	/rtrec\.so|\.c:[0-9]+/ && !frame && ($0 ~ /rtrec\.so/ || $0 ~ src_re) {
		frame = $0; sub(/^==[0-9]+== +(at|by) 0x[0-9A-F]+: /, "", frame)
	}
	/^$/ { if (kind) print kind " @ " frame; kind = ""; frame = "" }
' "$TMP/rtrec_errors.txt" | sort | uniq -c | sort -rn)

CRASHES=$(grep -hE 'Process terminating with default action of signal' "$VGLOG"/*.log 2>/dev/null | wc -l || true)
SIGNALED=$(grep -cE 'terminated by signal|was terminated by exception' "$TMP/server.log" || true)
PROCS=$(ls "$VGLOG" | wc -l)

echo
echo "----- valgrind -----"
echo "server processes traced:            $PROCS"
echo "valgrind errors in total:           $TOTAL (PostgreSQL's own included)"
echo "valgrind errors with an rtrec frame: $RTREC"
echo "WAL buffer writes (not counted):    $WAL (see the comment above the analysis)"
if [ "$RTREC" -gt 0 ]; then
	echo "distinct (count, kind @ first rtrec frame):"
	echo "$DISTINCT" | sed 's/^/  /'
	echo "first reports:"
	head -n 120 "$TMP/rtrec_errors.txt" | sed 's/^/  /'
fi
if [ "$TOTAL" -gt "$RTREC" ]; then
	echo "other errors, by kind and first frame (noise from PostgreSQL itself):"
	awk '
		/VALGRINDERROR-BEGIN/ { inb = 1; kind = ""; fr = ""; next }
		/VALGRINDERROR-END/ { if (inb) print kind " @ " fr; inb = 0; next }
		inb && !kind && /^==[0-9]+== [A-Z]/ { kind = $0; sub(/^==[0-9]+== /, "", kind) }
		inb && !fr && /(at|by) 0x/ { fr = $0; sub(/^==[0-9]+== +(at|by) 0x[0-9A-F]+: /, "", fr) }
	' "$VGLOG"/*.log | sort | uniq -c | sort -rn | head -n 10 | sed 's/^/  /'
fi
echo "server processes killed by a signal: $CRASHES (valgrind), $SIGNALED (server log)"
echo "pg_regress: exit status $REGRESS_RC, $((T1 - T0)) s under valgrind"
grep -E '^(test |     )?[[:space:]]*[^[:space:]]+[[:space:]]+\.\.\.[[:space:]]+(ok|FAILED|failed)' "$TMP/regress.log" \
	| sed 's/^/  /' || true
if [ "$REGRESS_RC" != 0 ] && [ -s "$OUT/regression.diffs" ]; then
	echo "  (differences in $OUT/regression.diffs; keep them with RTREC_VALGRIND_KEEP=1)"
	head -n 40 "$OUT/regression.diffs" | sed 's/^/  | /'
fi
echo
if [ "$RTREC" = 0 ] && [ "$CRASHES" = 0 ] && [ "$SIGNALED" = 0 ]; then
	echo "PASS: $RTREC valgrind errors with rtrec frames ($TOTAL in total), no crash"
	exit 0
fi
echo "FAIL: $RTREC valgrind errors with rtrec frames ($TOTAL in total), $((CRASHES + SIGNALED)) crash reports"
exit 1
