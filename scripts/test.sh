#!/usr/bin/env bash
# scripts/test.sh: build rtrec, install it, and run every test on a throwaway
# PostgreSQL 15 cluster.
#
#   sudo scripts/test.sh            pg_regress (sql/), isolation (specs/), TAP (t/)
#   sudo scripts/test.sh --quick    the same without the TAP tests
#
# As root it first installs what is missing (postgresql-15,
# postgresql-server-dev-15, libipc-run-perl, make, gcc) with apt-get.  It
# builds a clean copy of the source tree with -Werror, installs the extension,
# then, as an unprivileged user (postgres, or one it creates), starts a cluster
# in a temporary directory (loopback and a private unix socket only, on a free
# port) and runs `make installcheck` against it.  The cluster and the temporary
# directory are removed on exit, whatever happens.  Test outputs (results/,
# output_iso/, regression.diffs, tmp_check/log/) are copied back into the
# source tree for inspection.
#
# The last line printed is "N passed, N failed" (pg_regress tests, isolation
# tests and TAP test files); the exit status is non-zero on any failure.
#
# Environment:
#   PG_CONFIG            pg_config to build against (default: PostgreSQL 15's)
#   PROVE_FLAGS          extra flags for prove, e.g. -j2 or -v
#   RTREC_TEST_KEEP=1    keep the temporary directory (cluster stopped) for debugging
#   RTREC_TEST_TIMEOUT   seconds allowed for each test phase (default 1800)

set -Eeuo pipefail

usage()
{
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
	exit "${1:-0}"
}

QUICK=0
for arg in "$@"; do
	case "$arg" in
		--quick) QUICK=1 ;;
		-h|--help) usage 0 ;;
		*) echo "test.sh: unknown argument: $arg" >&2; usage 2 >&2 ;;
	esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PHASE_TIMEOUT=${RTREC_TEST_TIMEOUT:-1800}
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

say() { printf '==> %s\n' "$*"; }
warn() { printf 'test.sh: %s\n' "$*" >&2; }

# counts of the tests this run is meant to run, by kind
count_files() { local n=0 f; for f in "$@"; do [ -e "$f" ] && n=$((n + 1)); done; echo "$n"; }
N_REGRESS=$(count_files "$REPO"/sql/*.sql)
N_ISOLATION=$(count_files "$REPO"/specs/*.spec)
N_TAP=$(count_files "$REPO"/t/*.pl)
[ "$QUICK" = 1 ] && N_TAP=0
N_TOTAL=$((N_REGRESS + N_ISOLATION + N_TAP))

PASSED=0
FAILED=0
TMP=
PGDATA_DIR=
TEST_USER=
CREATED_USER=
SERVER_STARTED=0

summary()
{
	echo "$PASSED passed, $FAILED failed"
}

# Failing before any test ran: every test counts as failed.
die_before_tests()
{
	warn "$*"
	FAILED=$((N_TOTAL > 0 ? N_TOTAL : 1))
	PASSED=0
	summary
	exit 1
}

# Runs a command as the unprivileged test user (as ourselves if not root).
as_user()
{
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$TEST_USER" -- env HOME="$TMP" "$@"
	else
		"$@"
	fi
}

cleanup()
{
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ "$SERVER_STARTED" = 1 ]; then
		as_user "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1
	fi
	# servers a killed TAP test may have left running in our directory
	if [ -n "$TMP" ] && [ -d "$TMP/src/tmp_check" ]; then
		find "$TMP/src/tmp_check" -name postmaster.pid 2>/dev/null | while read -r pidfile; do
			as_user "$PG_BINDIR/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1
		done
	fi
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "${RTREC_TEST_KEEP:-0}" = 1 ]; then
			warn "kept $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	if [ -n "$CREATED_USER" ]; then
		userdel "$CREATED_USER" >/dev/null 2>&1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

#------------------------------------------------------------------------------
# 1. Packages
#------------------------------------------------------------------------------
PACKAGES=(postgresql-15 postgresql-server-dev-15 libipc-run-perl make gcc)
missing=()
if command -v dpkg >/dev/null 2>&1; then
	for p in "${PACKAGES[@]}"; do
		dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$p")
	done
fi
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		say "installing ${missing[*]}"
		apt-get update -q </dev/null || die_before_tests "apt-get update failed"
		apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null \
			|| die_before_tests "apt-get install ${missing[*]} failed"
	else
		die_before_tests "missing packages: ${missing[*]} (run as root: sudo $0)"
	fi
fi

[ -x "$PG_CONFIG" ] || die_before_tests "pg_config not found at $PG_CONFIG (set PG_CONFIG)"
PG_BINDIR=$("$PG_CONFIG" --bindir)
say "$("$PG_CONFIG" --version), $PG_CONFIG"

#------------------------------------------------------------------------------
# 2. Test user and a clean copy of the source tree
#------------------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	if id postgres >/dev/null 2>&1; then
		TEST_USER=postgres
	else
		TEST_USER=rtrec_test
		if ! id "$TEST_USER" >/dev/null 2>&1; then
			useradd --system --no-create-home --shell /bin/sh "$TEST_USER" \
				|| die_before_tests "could not create user $TEST_USER"
			CREATED_USER=$TEST_USER
		fi
	fi
else
	TEST_USER=$(id -un)
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtrec-test.XXXXXX")
SRC="$TMP/src"
PGDATA_DIR="$TMP/data"
SOCKDIR="$TMP/sock"
SERVER_LOG="$TMP/server.log"
mkdir -p "$SRC" "$SOCKDIR"
# everything but git metadata and build or test outputs
tar -C "$REPO" -cf - \
	--exclude=./.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=./results --exclude=./output_iso --exclude=./tmp_check \
	--exclude=./tmp_check_iso --exclude=./log --exclude=./regression.diffs \
	--exclude=./regression.out --exclude=./bench/out . \
	| tar -C "$SRC" -xf -
if [ "$(id -u)" = 0 ]; then
	chown -R "$TEST_USER": "$TMP"
fi
chmod 700 "$TMP"

#------------------------------------------------------------------------------
# 3. Build (-Werror) as the test user, install
#------------------------------------------------------------------------------
say "building with WERROR=1"
if ! as_user make -C "$SRC" -s -j"$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$PG_CONFIG" WERROR=1; then
	die_before_tests "build failed"
fi
say "installing"
if ! make -C "$SRC" -s PG_CONFIG="$PG_CONFIG" install; then
	die_before_tests "make install failed (it needs root: sudo $0)"
fi

#------------------------------------------------------------------------------
# 4. Throwaway cluster: loopback only, socket in $SOCKDIR, a free port
#------------------------------------------------------------------------------
port_in_use()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

say "initdb"
as_user "$PG_BINDIR/initdb" -D "$PGDATA_DIR" -A trust -E UTF8 --no-locale --no-sync \
	>"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; die_before_tests "initdb failed"; }
cat >>"$PGDATA_DIR/postgresql.conf" <<EOF

# rtrec test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_prepared_transactions = 10
max_connections = 50
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
EOF

PORT=
for attempt in 1 2 3 4 5 6 7 8; do
	candidate=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
	port_in_use "$candidate" && continue
	if as_user "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$SERVER_LOG" -w -t 60 \
		-o "-p $candidate" start >/dev/null 2>&1; then
		PORT=$candidate
		SERVER_STARTED=1
		break
	fi
done
if [ -z "$PORT" ]; then
	[ -f "$SERVER_LOG" ] && tail -n 30 "$SERVER_LOG" >&2
	die_before_tests "could not start the test cluster"
fi
say "cluster on 127.0.0.1:$PORT and $SOCKDIR, user $TEST_USER"

#------------------------------------------------------------------------------
# 5. Tests: one `make installcheck` per kind, so that a failure in one kind
#    does not hide the results of the others
#------------------------------------------------------------------------------
run_phase()
{
	# $1 = name, rest = make variables selecting the phase
	local name=$1 rc=0
	shift
	say "$name"
	as_user timeout -k 30 "$PHASE_TIMEOUT" \
		env PGHOST="$SOCKDIR" PGPORT="$PORT" PGUSER="$TEST_USER" PGDATABASE=postgres \
		PG_CONFIG="$PG_CONFIG" PATH="$PG_BINDIR:$PATH" PROVE_FLAGS="${PROVE_FLAGS:-}" \
		make -C "$SRC" --no-print-directory PG_CONFIG="$PG_CONFIG" "$@" installcheck \
		2>&1 | tee "$TMP/$name.log" || rc=$?
	return "$rc"
}

# pg_regress / pg_isolation_regress lines: PG 15 "test name ... ok|FAILED",
# PG 16+ "ok 1 - name" / "not ok 1 - name"
count_regress()
{
	local log=$1 total=$2 rc=$3 ok bad
	ok=$(grep -cE '^(test |     )?[[:space:]]*[^[:space:]]+[[:space:]]+\.\.\.[[:space:]]+ok|^ok [0-9]+ ' "$log" || true)
	bad=$(grep -cE '\.\.\.[[:space:]]+(FAILED|failed)|^not ok [0-9]+ ' "$log" || true)
	# tests that never reported (pg_regress died) count as failed
	if [ $((ok + bad)) -lt "$total" ]; then
		bad=$((total - ok))
	fi
	if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		bad=1
	fi
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + bad))
}

# prove: failed files are listed in its "Test Summary Report" as "t/x.pl (Wstat: ...)"
count_tap()
{
	local log=$1 total=$2 rc=$3 bad
	bad=$(grep -cE '^t/[^[:space:]]+\.pl[[:space:]]+\(Wstat' "$log" || true)
	if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
		bad=$((total > 0 ? total : 1))
	fi
	[ "$bad" -gt "$total" ] && bad=$total
	PASSED=$((PASSED + total - bad))
	FAILED=$((FAILED + bad))
}

show_failure()
{
	local f
	for f in "$SRC/regression.diffs" "$SRC/output_iso/regression.diffs"; do
		if [ -s "$f" ]; then
			echo "----- ${f#"$SRC"/} (first 400 lines) -----"
			head -n 400 "$f"
		fi
	done
	if [ -d "$SRC/tmp_check/log" ]; then
		for f in "$SRC"/tmp_check/log/*; do
			[ -f "$f" ] || continue
			echo "----- ${f#"$SRC"/} (last 60 lines) -----"
			tail -n 60 "$f"
		done
	fi
	echo "----- server log (last 40 lines) -----"
	tail -n 40 "$SERVER_LOG" 2>/dev/null
}

ANY_FAILED=0
if [ "$N_REGRESS" -gt 0 ]; then
	rc=0
	run_phase regress ISOLATION= TAP_TESTS= || rc=$?
	count_regress "$TMP/regress.log" "$N_REGRESS" "$rc"
	[ "$rc" = 0 ] || ANY_FAILED=1
fi
if [ "$N_ISOLATION" -gt 0 ]; then
	rc=0
	run_phase isolation REGRESS= TAP_TESTS= || rc=$?
	count_regress "$TMP/isolation.log" "$N_ISOLATION" "$rc"
	[ "$rc" = 0 ] || ANY_FAILED=1
fi
if [ "$N_TAP" -gt 0 ]; then
	rc=0
	run_phase tap REGRESS= ISOLATION= || rc=$?
	count_tap "$TMP/tap.log" "$N_TAP" "$rc"
	[ "$rc" = 0 ] || ANY_FAILED=1
elif [ "$QUICK" = 1 ]; then
	say "TAP tests skipped (--quick)"
fi

if [ "$ANY_FAILED" = 1 ] || [ "$FAILED" -gt 0 ]; then
	show_failure
fi

# copy the test outputs back for inspection (they are in .gitignore)
rm -rf "$REPO/results" "$REPO/output_iso" "$REPO/regression.diffs" "$REPO/regression.out" \
	"$REPO/tmp_check"
for f in results output_iso regression.diffs regression.out tmp_check/log; do
	if [ -e "$SRC/$f" ]; then
		mkdir -p "$(dirname "$REPO/$f")"
		cp -r "$SRC/$f" "$REPO/$f"
		[ "$(id -u)" = 0 ] && chown -R "$(stat -c %u:%g "$REPO")" "$REPO/${f%%/*}"
	fi
done

summary
[ "$ANY_FAILED" = 0 ] && [ "$FAILED" = 0 ]
