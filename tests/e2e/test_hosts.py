"""End-to-end: the app's websocket refuses a Host header it does not serve (DNS rebinding)."""

from __future__ import annotations

import base64
import http.client
import os
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _upgrade_status(url: str, host: str) -> int:
    """Status of a websocket upgrade to Streamlit's stream endpoint sent with ``host``."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(
            "GET",
            "/_stcore/stream",
            headers={
                "Host": f"{host}:{parts.port}",
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                "Sec-WebSocket-Version": "13",
            },
        )
        return conn.getresponse().status
    finally:
        conn.close()


def test_websocket_accepts_the_served_host_and_refuses_a_rebound_one(app_server) -> None:
    assert _upgrade_status(app_server.url, "127.0.0.1") == 101
    assert _upgrade_status(app_server.url, "attacker.example") >= 400
