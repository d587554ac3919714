#!/usr/bin/env bash
# Installs (if missing) Orthanc and its DICOMweb plugin from Debian (`orthanc`,
# `orthanc-dicomweb`), starts an Orthanc PACS for the tests with its own storage in a fresh
# folder, answering on loopback only (RemoteAccessAllowed false), with HTTP basic
# authentication on, and prints the DICOMweb base URL with its credentials:
#   http://USER:PASSWORD@127.0.0.1:HTTP_PORT/dicom-web
# (export it as TEST_PACS_URL). The Debian service itself is never started: this server runs
# from the state folder, and a server this script started earlier on the same port is stopped
# first (its data goes with it). Needs root only to install the packages.
set -euo pipefail

HTTP_PORT="${ORTHANC_HTTP_PORT:-8042}"
USER_NAME="${ORTHANC_USER:-cxrpacs}"
PASSWORD="${ORTHANC_PASSWORD:-cxr-pacs-test-password}"
STATE="${ORTHANC_STATE_DIR:-/tmp/cxr-orthanc-${HTTP_PORT}}"
PLUGIN="${ORTHANC_DICOMWEB_PLUGIN:-/usr/share/orthanc/plugins/libOrthancDicomWeb.so}"

if ! command -v Orthanc >/dev/null || [ ! -f "${PLUGIN}" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq orthanc orthanc-dicomweb >&2
fi

if [ -f "${STATE}/orthanc.pid" ]; then
    old="$(cat "${STATE}/orthanc.pid")"
    if kill -0 "${old}" 2>/dev/null; then
        kill "${old}"
        for _ in $(seq 1 50); do kill -0 "${old}" 2>/dev/null || break; sleep 0.2; done
    fi
fi
rm -rf "${STATE}"
mkdir -p "${STATE}/db"
chmod 700 "${STATE}"

# Only the DICOMweb plugin is loaded (not the Debian plugin folder: no worklists, no served
# folders); the DICOM (DIMSE) port is off, since the app speaks DICOMweb only.
cat > "${STATE}/orthanc.json" <<EOF
{
  "Name": "CXR test PACS",
  "StorageDirectory": "${STATE}/db",
  "IndexDirectory": "${STATE}/db",
  "HttpPort": ${HTTP_PORT},
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": true,
  "RegisteredUsers": { "${USER_NAME}": "${PASSWORD}" },
  "DicomServerEnabled": false,
  "OrthancExplorerEnabled": false,
  "WebDavEnabled": false,
  "HttpDescribeErrors": true,
  "Plugins": [ "${PLUGIN}" ],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/", "EnableWado": false }
}
EOF
chmod 600 "${STATE}/orthanc.json"

# setsid: the server outlives this script and is not stopped by the caller's Ctrl+C.
setsid Orthanc "${STATE}/orthanc.json" >"${STATE}/orthanc.log" 2>&1 </dev/null &
echo $! > "${STATE}/orthanc.pid"

URL="http://127.0.0.1:${HTTP_PORT}"
for attempt in $(seq 1 120); do
    if curl -fs -o /dev/null -u "${USER_NAME}:${PASSWORD}" "${URL}/dicom-web/studies"; then
        break
    fi
    if ! kill -0 "$(cat "${STATE}/orthanc.pid")" 2>/dev/null; then
        tail -n 20 "${STATE}/orthanc.log" >&2
        echo "Orthanc exited during start-up (log: ${STATE}/orthanc.log)" >&2
        exit 1
    fi
    if [ "${attempt}" = 120 ]; then
        echo "Orthanc's DICOMweb API did not answer in 60 s (log: ${STATE}/orthanc.log)" >&2
        exit 1
    fi
    sleep 0.5
done

echo "http://${USER_NAME}:${PASSWORD}@127.0.0.1:${HTTP_PORT}/dicom-web"
