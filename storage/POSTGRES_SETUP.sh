#!/usr/bin/env bash
# Installs (if missing) and starts a local PostgreSQL on 127.0.0.1:5432 for the storage tests,
# sets the postgres password, creates the cxr_test database and prints the SQLAlchemy URL.
# Idempotent: safe to run repeatedly. Needs root (apt-get, su postgres).
set -euo pipefail

DB_NAME="${PG_TEST_DB:-cxr_test}"
DB_PASSWORD="${PG_TEST_PASSWORD:-postgres}"
PORT="${PG_TEST_PORT:-5432}"

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

PG_VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "${PG_VERSION} main"; then
    pg_createcluster "${PG_VERSION}" main --port "${PORT}" >&2
fi
if ! pg_lsclusters -h | awk -v v="${PG_VERSION}" '$1==v && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster "${PG_VERSION}" main start >&2
fi

# Wait until the server accepts connections (containers can be slow to start).
for _ in $(seq 1 30); do
    if su postgres -c "pg_isready -q -h 127.0.0.1 -p ${PORT}"; then
        break
    fi
    sleep 1
done
su postgres -c "pg_isready -h 127.0.0.1 -p ${PORT}" >&2

su postgres -c "psql -q -p ${PORT} -c \"ALTER USER postgres WITH PASSWORD '${DB_PASSWORD}';\"" >&2
if ! su postgres -c "psql -p ${PORT} -tAc \"SELECT 1 FROM pg_database WHERE datname='${DB_NAME}'\"" | grep -q 1; then
    su postgres -c "createdb -p ${PORT} ${DB_NAME}" >&2
fi

echo "postgresql+psycopg://postgres:${DB_PASSWORD}@127.0.0.1:${PORT}/${DB_NAME}"
