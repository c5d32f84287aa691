# bench/cluster.sh: shared helpers for rtrec's benchmarks.  Source it:
#
#   . bench/cluster.sh
#   rtrec_build_install             # make && make install (PG_CONFIG below)
#   rtrec_cluster_start             # throwaway cluster, exports PGHOST/PGPORT/PGUSER
#   rtrec_createdb bench            # CREATE DATABASE bench; CREATE EXTENSION rtrec
#   rtrec_psql bench -c 'SELECT 1'
#   rtrec_dsn bench                 # a libpq DSN for Python (psycopg2)
#   ...                             # the cluster is stopped and removed on exit
#
# The cluster runs as the postgres OS user (the server refuses root) in a
# temporary directory, listens on 127.0.0.1 only, on a free port, with its unix
# socket in that directory.  Settings: shared_buffers=1GB, synchronous_commit=off,
# max_connections=50, max_worker_processes=16 (rtrec starts one Swing refresh
# worker per database), plus RTREC_CLUSTER_EXTRA_CONF (lines of postgresql.conf).
#
# The server runs from a private snapshot of the PostgreSQL installation taken
# at rtrec_cluster_start (its own postgres/initdb/pg_ctl binaries, symbolic links
# to every system file, and a copy of rtrec's installed files), so a `make
# install` by someone else during a long benchmark cannot change what is
# measured.  RTREC_PRIVATE_INSTALL=0 runs the system installation instead.
#
# Environment:
#   PG_CONFIG                 default /usr/lib/postgresql/15/bin/pg_config
#   RTREC_PRIVATE_INSTALL     1 (default) or 0, see above
#   RTREC_BUILD_HEAD=1        the snapshot gets rtrec built from the committed HEAD
#                             (git archive), not the installed files; the system
#                             installation is left alone
#   RTREC_CLUSTER_EXTRA_CONF  extra postgresql.conf lines
#   RTREC_CLUSTER_KEEP=1      leave the cluster running on exit (prints how to stop it)
#   RTREC_BENCH_PRE_SQL       a SQL file run in every database rtrec_createdb makes,
#                             after CREATE EXTENSION (for experiments; not used by default)
#
# rtrec_cluster_start installs an EXIT/INT/TERM trap that stops the cluster and
# removes its directory.  A script that needs its own cleanup too should call
# rtrec_cluster_stop from its own trap instead (set the trap after the start).
#
# Used by bench/replay.sh and bench/latency.sh; bench/ingest.sh, scripts/fuzz.sh
# and scripts/valgrind.sh, which run clusters of their own, use its helpers.

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
RTREC_PGBIN=$("$PG_CONFIG" --bindir)
RTREC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RTREC_PRIVATE_INSTALL=${RTREC_PRIVATE_INSTALL:-1}
RTREC_TMP=
RTREC_PGDATA=
RTREC_SRVBIN=
RTREC_CLUSTER_STARTED=0

rtrec_log() { echo "[$(basename "$0") $(date +%T)] $*" >&2; }
rtrec_die() { rtrec_log "ERROR: $*"; exit 1; }

# runs a command as the postgres OS user when we are root
rtrec_as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# the user rtrec_as_pg runs as (fails when we are root and postgres is missing)
rtrec_run_user() {
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 && echo postgres
	else
		id -un
	fi
}

# make && make install of the tree $1 (default: this repository)
rtrec_build_install() {
	local src="${1:-$RTREC_ROOT}"
	rtrec_log "building and installing rtrec from $src"
	(cd "$src" && make -s PG_CONFIG="$PG_CONFIG" && make -s install PG_CONFIG="$PG_CONFIG") >&2 \
		|| rtrec_die "build or install failed"
}

rtrec_free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
			echo "$p"; return 0
		fi
	done
	return 1
}

# links every entry of $1 into $2 that $2 lacks, except rtrec's own files
rtrec_link_farm() {
	local src="$1" dst="$2" e name
	mkdir -p "$dst"
	for e in "$src"/*; do
		name=$(basename "$e")
		case "$name" in rtrec|rtrec.*|rtrec--*) continue ;; esac
		if [ -d "$e" ] && [ -d "$dst/$name" ] && [ ! -L "$dst/$name" ]; then
			rtrec_link_farm "$e" "$dst/$name"
		elif [ ! -e "$dst/$name" ]; then
			ln -s "$e" "$dst/$name"
		fi
	done
}

# snapshot of the installation with the currently installed rtrec, in $RTREC_TMP/inst
_rtrec_private_install() {
	local pkglib share inst="$RTREC_TMP/inst"
	pkglib=$("$PG_CONFIG" --pkglibdir)
	share=$("$PG_CONFIG" --sharedir)
	mkdir -p "$inst$RTREC_PGBIN" "$inst$pkglib" "$inst$share/extension"
	if [ "${RTREC_BUILD_HEAD:-0}" = 1 ]; then
		# the committed HEAD, built in $RTREC_TMP/src, installed only into the snapshot
		local src="$RTREC_TMP/src"
		mkdir -p "$src"
		git -C "$RTREC_ROOT" archive HEAD | tar -x -C "$src" || rtrec_die "git archive HEAD failed"
		rtrec_log "building rtrec from HEAD ($(git -C "$RTREC_ROOT" rev-parse --short HEAD)) into the private snapshot"
		(cd "$src" && make -s PG_CONFIG="$PG_CONFIG" && make -s install PG_CONFIG="$PG_CONFIG" DESTDIR="$inst") >&2 \
			|| rtrec_die "build of HEAD failed"
	else
		[ -f "$pkglib/rtrec.so" ] || rtrec_die "rtrec is not installed ($pkglib/rtrec.so); run rtrec_build_install"
		cp "$pkglib/rtrec.so" "$inst$pkglib/"
		cp "$share"/extension/rtrec[.-]* "$inst$share/extension/"
	fi
	cp "$RTREC_PGBIN/postgres" "$RTREC_PGBIN/initdb" "$RTREC_PGBIN/pg_ctl" "$inst$RTREC_PGBIN/"
	rtrec_link_farm "$pkglib" "$inst$pkglib"
	rtrec_link_farm "$share" "$inst$share"
	RTREC_SRVBIN="$inst$RTREC_PGBIN"
}

# For scripts that run a cluster of their own in directory $1 (fuzz.sh,
# valgrind.sh): sets RTREC_SRVBIN to a private snapshot made there, or to the
# system's binaries with RTREC_PRIVATE_INSTALL=0.
rtrec_server_binaries() {
	if [ "$RTREC_PRIVATE_INSTALL" = 1 ]; then
		RTREC_TMP=$1
		_rtrec_private_install
	else
		RTREC_SRVBIN=$RTREC_PGBIN
	fi
}

# The shared data sets (folder $1) and the Python that reads them, for
# replay.sh and latency.sh: sets PY, TAOBAO, ML and ML_ITEMS.
rtrec_bench_data() {
	PY=/usr/bin/python3
	"$PY" -c 'import psycopg2' 2>/dev/null \
		|| rtrec_die "needs python3-psycopg2 for /usr/bin/python3 (apt-get install python3-psycopg2)"
	TAOBAO="$1/taobao_userbehavior/interactions.csv"
	ML="$1/movielens_latest_small/interactions.csv"
	ML_ITEMS="$1/movielens_latest_small/items.csv"
	local f
	for f in "$TAOBAO" "$ML" "$ML_ITEMS"; do [ -r "$f" ] || rtrec_die "missing $f (see --data)"; done
}

# what the cluster runs: md5 of rtrec.so and of the extension script
rtrec_installed_id() {
	local pkglib share
	if [ "$RTREC_PRIVATE_INSTALL" = 1 ] && [ -n "$RTREC_TMP" ]; then
		pkglib="$RTREC_TMP/inst$("$PG_CONFIG" --pkglibdir)"; share="$RTREC_TMP/inst$("$PG_CONFIG" --sharedir)"
	else
		pkglib=$("$PG_CONFIG" --pkglibdir); share=$("$PG_CONFIG" --sharedir)
	fi
	echo "rtrec.so md5 $(md5sum <"$pkglib/rtrec.so" | cut -c1-12), rtrec--1.0.sql md5 $(md5sum <"$share/extension/rtrec--1.0.sql" | cut -c1-12)"
}

rtrec_cluster_start() {
	[ "$RTREC_CLUSTER_STARTED" = 1 ] && return 0
	RTREC_TMP=$(mktemp -d /tmp/rtrec-bench.XXXXXX)
	chmod 755 "$RTREC_TMP"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$RTREC_TMP"
	RTREC_PGDATA="$RTREC_TMP/data"
	trap rtrec_cluster_stop EXIT
	trap 'exit 130' INT TERM
	trap 'exit 129' HUP PIPE	# a closed stdout/stderr pipe must not kill us before cleanup
	rtrec_server_binaries "$RTREC_TMP"
	rtrec_log "initdb in $RTREC_TMP"
	rtrec_as_pg "$RTREC_SRVBIN/initdb" -D "$RTREC_PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
		--no-sync >"$RTREC_TMP/initdb.log" 2>&1 || { cat "$RTREC_TMP/initdb.log" >&2; rtrec_die "initdb failed"; }
	local attempt port
	for attempt in 1 2 3 4 5; do
		port=$(rtrec_free_port) || rtrec_die "no free port found"
		rtrec_as_pg tee -a "$RTREC_PGDATA/postgresql.conf" >/dev/null <<EOF
# bench/cluster.sh, attempt $attempt
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$RTREC_TMP'
shared_buffers = 1GB
synchronous_commit = off
max_connections = 50
max_worker_processes = 16
max_wal_size = 4GB
checkpoint_timeout = 30min
${RTREC_CLUSTER_EXTRA_CONF:-}
EOF
		if rtrec_as_pg "$RTREC_SRVBIN/pg_ctl" -D "$RTREC_PGDATA" -l "$RTREC_TMP/server.log" -w -t 60 start \
			>/dev/null 2>&1; then
			RTREC_CLUSTER_STARTED=1
			break
		fi
		rtrec_log "server did not start on port $port, retrying"
	done
	[ "$RTREC_CLUSTER_STARTED" = 1 ] || { tail -n 20 "$RTREC_TMP/server.log" >&2; rtrec_die "could not start the server"; }
	export PGHOST="$RTREC_TMP" PGPORT="$port" PGUSER=postgres
	rtrec_log "cluster up: PGHOST=$PGHOST PGPORT=$PGPORT ($(rtrec_installed_id))"
}

rtrec_cluster_stop() {
	local rc=$?
	trap - EXIT
	trap '' PIPE HUP
	if [ -n "$RTREC_TMP" ] && [ "$rc" -ne 0 ] && [ -f "$RTREC_TMP/server.log" ]; then
		mkdir -p "$RTREC_ROOT/bench/out"
		local saved="$RTREC_ROOT/bench/out/$(basename "$0" .sh)-$(date +%Y%m%d-%H%M%S)-failed-server.log"
		cp "$RTREC_TMP/server.log" "$saved" 2>/dev/null && rtrec_log "server log copied to $saved"
		tail -n 15 "$RTREC_TMP/server.log" >&2 || true
	fi
	if [ "${RTREC_CLUSTER_KEEP:-0}" = 1 ] && [ "$RTREC_CLUSTER_STARTED" = 1 ]; then
		rtrec_log "RTREC_CLUSTER_KEEP: cluster left running: psql -h $RTREC_TMP -p $PGPORT -U postgres"
		rtrec_log "  stop: runuser -u postgres -- $RTREC_SRVBIN/pg_ctl -D $RTREC_PGDATA -m fast stop && rm -rf $RTREC_TMP"
		return $rc
	fi
	if [ "$RTREC_CLUSTER_STARTED" = 1 ]; then
		rtrec_as_pg "$RTREC_SRVBIN/pg_ctl" -D "$RTREC_PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1 \
			|| rtrec_as_pg "$RTREC_SRVBIN/pg_ctl" -D "$RTREC_PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
		RTREC_CLUSTER_STARTED=0
	fi
	[ -n "$RTREC_TMP" ] && rm -rf "$RTREC_TMP"
	RTREC_TMP=
	return $rc
}

# psql on database $1 as postgres, stop on error, quiet
rtrec_psql() {
	local db="$1"; shift
	rtrec_as_pg "$RTREC_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}

# one value from a query on database $1
rtrec_sql_value() { rtrec_psql "$1" -A -t -c "$2"; }

# CREATE DATABASE $1 and CREATE EXTENSION rtrec in it (dropping it first if it exists)
rtrec_createdb() {
	local db="$1"
	rtrec_psql postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" -c "CREATE DATABASE \"$db\"" \
		|| rtrec_die "CREATE DATABASE $db failed"
	rtrec_psql "$db" -c "CREATE EXTENSION rtrec" || rtrec_die "CREATE EXTENSION rtrec failed in $db"
	if [ -n "${RTREC_BENCH_PRE_SQL:-}" ]; then
		rtrec_log "running RTREC_BENCH_PRE_SQL=$RTREC_BENCH_PRE_SQL in $db"
		rtrec_psql "$db" -f "$RTREC_BENCH_PRE_SQL" >/dev/null || rtrec_die "RTREC_BENCH_PRE_SQL failed in $db"
	fi
}

rtrec_dropdb() {
	rtrec_psql postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"
}

# a libpq connection string for database $1 (Python, psql "$(rtrec_dsn db)")
rtrec_dsn() { echo "host=$PGHOST port=$PGPORT user=postgres dbname=$1"; }

# true if database $1 has function public/extschema $2
rtrec_db_has_function() {
	[ "$(rtrec_sql_value "$1" "SELECT count(*) FROM pg_proc WHERE proname = '$2'")" != 0 ]
}
