"""The test S3 server (SeaweedFS from storage/SEAWEEDFS_SETUP.sh), one fresh prefix per use.

``TEST_S3_URL`` is ``http://ACCESS_KEY:SECRET@host:port/bucket`` as the setup script prints it.
Every test gets its own prefix in the bucket, the way each PostgreSQL test gets its own
schema, and the prefix is emptied afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import urlsplit

import pytest


def s3_url_or_skip() -> str:
    """``TEST_S3_URL``; skips where it is unset on a developer's machine, fails in CI."""
    url = os.environ.get("TEST_S3_URL")
    if url:
        return url
    reason = "TEST_S3_URL is unset (run storage/SEAWEEDFS_SETUP.sh and export the URL it prints)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + "; CI must test the S3 blob store")
    pytest.skip(reason)


def s3_env(url: str, prefix: str) -> dict[str, str]:
    """The app's settings (``BLOB_URL`` and the S3 variables) for ``prefix`` of the test bucket."""
    parts = urlsplit(url)
    return {
        "BLOB_URL": f"s3://{parts.path.strip('/')}/{prefix}",
        "S3_ENDPOINT_URL": f"{parts.scheme}://{parts.hostname}:{parts.port}",
        "AWS_ACCESS_KEY_ID": parts.username or "",
        "AWS_SECRET_ACCESS_KEY": parts.password or "",
        "AWS_REGION": "us-east-1",
    }


def raw_client(env: dict[str, str]):
    """A plain boto3 client for ``env``, for tests that act outside the app (an attacker, a
    foreign file, clean-up)."""
    return _client(
        env["S3_ENDPOINT_URL"],
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        env["AWS_REGION"],
    )


@cache
def _client(endpoint: str, key_id: str, secret: str, region: str):
    # One per server and credentials: making a client costs tens of milliseconds.
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=region,
    )


def bucket_and_prefix(env: dict[str, str]) -> tuple[str, str]:
    """The bucket and the key prefix (ending in ``/``) of ``env``'s ``BLOB_URL``."""
    parts = urlsplit(env["BLOB_URL"])
    return parts.netloc, parts.path.strip("/") + "/"


def all_keys(env: dict[str, str]) -> list[str]:
    """Every key under ``env``'s prefix, whatever its shape, relative to the prefix."""
    bucket, prefix = bucket_and_prefix(env)
    pages = raw_client(env).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"][len(prefix) :] for page in pages for item in page.get("Contents", [])]


@contextmanager
def s3_prefix() -> Iterator[dict[str, str]]:
    """Settings for a fresh, empty prefix of the test bucket, emptied afterwards.

    Yields:
        Environment entries to add to the app's environment.
    """
    env = s3_env(s3_url_or_skip(), f"t-{secrets.token_hex(6)}")
    try:
        yield env
    finally:
        bucket, prefix = bucket_and_prefix(env)
        client = raw_client(env)
        keys = [prefix + key for key in all_keys(env)]
        # One request per thousand objects: a test's audit anchors alone are dozens.
        for start in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]]},
            )
