#!/usr/bin/env bash
# scripts/demo.sh: the README's main job.  Builds and installs rtrec, starts a
# throwaway PostgreSQL 15 cluster (pg_virtualenv), loads a small generated
# shop (demo/demo.sql) and shows a customer's recommendations change as
# events arrive.  The cluster is dropped at the end.
#
#   sudo scripts/demo.sh
#
# As root it first installs what is missing with apt-get.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/packages.sh

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
rtrec_ensure_packages postgresql-15 postgresql-server-dev-15 postgresql-common make gcc

echo "==> building and installing rtrec"
make -s PG_CONFIG="$PG_CONFIG" WERROR=1 >/dev/null
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null

echo "==> demo on a throwaway cluster"
# psql runs as the caller, so hand it the script on standard input
pg_virtualenv -t -v 15 -o max_worker_processes=16 \
	sh -c 'psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION rtrec" && psql -X -q -v ON_ERROR_STOP=1' \
	<demo/demo.sql
