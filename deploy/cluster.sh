#!/usr/bin/env bash
# `make cluster REPLICAS=3`: the app as several stateless replicas on one machine.
#
#   PostgreSQL (storage/POSTGRES_SETUP.sh, database ${CLUSTER_DB:-cxr_cluster})  the records
#   SeaweedFS  (storage/SEAWEEDFS_SETUP.sh, S3 on 127.0.0.1:8433)   the encrypted images
#   N x `streamlit run` on 127.0.0.1:8601..                         no state on local disk
#   HAProxy    on 127.0.0.1:${CLUSTER_PORT:-8600}                   sticky cookie, health checks
#
# Every replica gets the same DATABASE_URL, BLOB_URL, MASTER_KEY and COOKIE_SECRET, so any of
# them can serve any user; HAProxy pins a browser to one replica (its websocket holds the
# page's state) and sends it to another when that one stops answering /_stcore/health.
# The master key and cookie secret are made once and kept in ${CLUSTER_DIR}/secrets (0600):
# on a real deployment they come from the secret store instead (docs/SCALING.md).
# Runs in the foreground; Ctrl+C (or SIGTERM) stops the replicas, HAProxy and SeaweedFS.
# PostgreSQL is left running, like `make test` leaves it. Needs root for PostgreSQL and apt.
set -euo pipefail
cd "$(dirname "$0")/.."

REPLICAS="${REPLICAS:-3}"
PORT="${CLUSTER_PORT:-8600}"
FIRST_REPLICA_PORT="${CLUSTER_REPLICA_PORT:-8601}"
STATE="${CLUSTER_DIR:-/tmp/cxr-cluster}"
APP="${CLUSTER_APP:-$( [ -f server.py ] && echo server.py || echo streamlit_app.py )}"
PYTHON=.venv/bin/python

mkdir -p "${STATE}/secrets" "${STATE}/logs"
chmod 700 "${STATE}" "${STATE}/secrets"

if ! command -v haproxy >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq haproxy >&2
fi

echo "== PostgreSQL"
DATABASE_URL="$(PG_TEST_DB="${CLUSTER_DB:-cxr_cluster}" bash storage/POSTGRES_SETUP.sh)"

echo "== SeaweedFS"
S3_URL="$(SW_S3_PORT=8433 SW_MASTER_PORT=9433 SW_VOLUME_PORT=9440 SW_FILER_PORT=8988 \
    SW_ADMIN_PORT=23746 SW_BUCKET=cxr-cluster SW_STATE_DIR="${STATE}/seaweedfs" \
    SW_KEEP_DATA=1 bash storage/SEAWEEDFS_SETUP.sh)"

secret() {  # a random secret kept in a 0600 file, made on first use
    local file="${STATE}/secrets/$1"
    if [ ! -s "${file}" ]; then
        (umask 077 && "${PYTHON}" -c "$2" > "${file}")
    fi
    cat "${file}"
}
MASTER_KEY="$(secret master.key \
    'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')"
COOKIE_SECRET="$(secret cookie.secret 'import secrets; print(secrets.token_urlsafe(48))')"
ADMIN_PASSWORD="$(secret admin.password 'import secrets; print(secrets.token_urlsafe(18))')"

eval "$("${PYTHON}" - "${S3_URL}" <<'PY'
import shlex, sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
for name, value in {
    "BLOB_URL": f"s3://{u.path.strip('/')}",
    "S3_ENDPOINT_URL": f"{u.scheme}://{u.hostname}:{u.port}",
    "AWS_ACCESS_KEY_ID": u.username,
    "AWS_SECRET_ACCESS_KEY": u.password,
    "AWS_REGION": "us-east-1",
}.items():
    print(f"export {name}={shlex.quote(value)}")
PY
)"
export DATABASE_URL MASTER_KEY COOKIE_SECRET ADMIN_PASSWORD
export APP_ENV=production ADMIN_USERNAME="${ADMIN_USERNAME:-admin}"
# HAProxy on this machine is the only proxy whose X-Forwarded-For is believed.
export TRUSTED_PROXIES=127.0.0.1

PIDS=()
stop_all() {
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do kill "${pid}" 2>/dev/null || true; done
    [ -f "${STATE}/haproxy.pid" ] && kill "$(cat "${STATE}/haproxy.pid")" 2>/dev/null || true
    kill "$(cat "${STATE}/seaweedfs/weed.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

start_replica() {  # index
    local index="$1" port=$((FIRST_REPLICA_PORT + $1 - 1))
    # An empty DATA_DIR per replica: with the settings above nothing is written there.
    mkdir -p "${STATE}/replica-${index}"
    DATA_DIR="${STATE}/replica-${index}" setsid .venv/bin/streamlit run "${APP}" \
        --server.port "${port}" --server.address 127.0.0.1 --server.headless true \
        >"${STATE}/logs/replica-${index}.log" 2>&1 </dev/null &
    PIDS+=("$!")
    echo "$!" > "${STATE}/replica-${index}.pid"
}

wait_healthy() {  # port
    for _ in $(seq 1 240); do
        curl -fs -o /dev/null "http://127.0.0.1:$1/_stcore/health" && return 0
        sleep 0.5
    done
    echo "replica on port $1 did not become healthy (logs in ${STATE}/logs)" >&2
    return 1
}

echo "== ${REPLICAS} replica(s) of ${APP}"
# The first replica alone applies migrations and creates the first admin; the others then
# open a database that is already up to date.
start_replica 1
wait_healthy "${FIRST_REPLICA_PORT}"
for index in $(seq 2 "${REPLICAS}"); do start_replica "${index}"; done
for index in $(seq 2 "${REPLICAS}"); do wait_healthy $((FIRST_REPLICA_PORT + index - 1)); done

echo "== HAProxy on 127.0.0.1:${PORT}"
{
    cat <<EOF
global
    maxconn 4096
defaults
    mode http
    option forwardfor
    option redispatch
    retries 2
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend app
    bind 127.0.0.1:${PORT}
    default_backend replicas
backend replicas
    balance roundrobin
    # Sticky: the websocket and the page's uploads go to the replica holding the page.
    cookie CXR_REPLICA insert indirect nocache httponly attr "SameSite=Lax"
    option httpchk GET /_stcore/health
    http-check expect status 200
    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
EOF
    for index in $(seq 1 "${REPLICAS}"); do
        echo "    server r${index} 127.0.0.1:$((FIRST_REPLICA_PORT + index - 1)) check cookie r${index}"
    done
} > "${STATE}/haproxy.cfg"
haproxy -c -q -f "${STATE}/haproxy.cfg"
haproxy -D -f "${STATE}/haproxy.cfg" -p "${STATE}/haproxy.pid"
wait_healthy "${PORT}"

echo "Cluster ready: http://127.0.0.1:${PORT}  (admin: ${ADMIN_USERNAME}, password in ${STATE}/secrets/admin.password)"
echo "Replica pids in ${STATE}/replica-*.pid, logs in ${STATE}/logs; Ctrl+C stops the cluster."
wait
