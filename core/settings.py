"""Application settings, read once from the environment with working local defaults.

Every path, URL, limit and secret of the app lives here so that no other module
reads ``os.environ`` directly.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from core.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Values that must never protect real data: refused outside local use.
_PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "admin"})
#: Shortest cookie secret accepted outside local use (placeholders are all shorter).
_MIN_COOKIE_SECRET = 32
#: Password-hashing cost profiles, named by ``ARGON2_PROFILE`` (see :func:`argon2_profile`).
ARGON2_PROFILES = ("production", "test")


class SettingsError(UserError, ValueError):
    """Raised when the environment describes an unsafe or unusable configuration.

    The sentence names the setting to fix, for whoever runs the app; it never repeats a secret.
    """

    code = "settings"
    default_message = "The app is not configured correctly."


@dataclass(frozen=True)
class Settings:
    """All configuration of the app.

    Attributes:
        environment: ``local`` (developer machine, permissive defaults) or
            ``production`` (placeholder secrets refused).
        data_dir: Where the SQLite database, encrypted blobs and the local key
            file live (``DATA_DIR``).
        shared_data_dir: Real radiographs for training, evaluation and tests
            (``SHARED_DATA_DIR``), never copied into the repository.
        max_upload_bytes: Largest accepted upload (``MAX_UPLOAD_MB``).
        database_url: Any SQLAlchemy URL (``DATABASE_URL``); defaults to a
            SQLite file under ``data_dir``.
        master_key: Base64 master key wrapping every user's data key
            (``MASTER_KEY``); ``None`` means a local key file is used.
        idle_timeout_minutes: Session idle timeout (``IDLE_TIMEOUT_MINUTES``).
        session_max_hours: Absolute lifetime of a login session, however active
            (``SESSION_MAX_HOURS``).
        cookie_secret: Key signing the session cookie (``COOKIE_SECRET``); ``None`` means a
            local key file is used (local use only).
        trusted_proxies: Addresses of reverse proxies whose ``X-Forwarded-For`` header is
            believed (``TRUSTED_PROXIES``, comma-separated); empty means none is.
        admin_username: First admin's name (``ADMIN_USERNAME``).
        admin_password: First admin's password (``ADMIN_PASSWORD``); ``None``
            means a one-time password is generated and printed on first start.
        checkpoint_path: The classifier checkpoint (``MODEL_CHECKPOINT``).
        user_quota_bytes: Most bytes of stored images one patient may keep
            (``USER_QUOTA_MB``).
        uploads_per_hour: Most scans one patient may store per hour (``UPLOADS_PER_HOUR``).
        registrations_per_hour: Most self-registered accounts per hour in all
            (``REGISTRATIONS_PER_HOUR``).
        registrations_per_client_per_hour: Most self-registered accounts per hour from one
            client: an IPv4 address or an IPv6 /64 (``REGISTRATIONS_PER_CLIENT_PER_HOUR``).
        registrations_per_network_per_hour: Most self-registered accounts per hour from one
            network: an IPv4 /24 or an IPv6 /48 (``REGISTRATIONS_PER_NETWORK_PER_HOUR``).
        emergency_approval_minutes: How long an emergency access request waits for a second
            person's approval before it expires (``EMERGENCY_APPROVAL_MINUTES``).
        emergency_independence_days: How long ago an admin may last have created or reset
            the account of an emergency requester or approver (``EMERGENCY_INDEPENDENCE_DAYS``;
            see :mod:`storage.sharing`).
        blob_url: Where the encrypted images are kept (``BLOB_URL``): ``file:///path``
            (default: ``data_dir/blobs``) or ``s3://bucket[/prefix]``, which several app
            servers can share.
        s3_endpoint_url: The S3 server (``S3_ENDPOINT_URL``); ``None`` means AWS itself.
        s3_region: The bucket's region (``AWS_REGION`` or ``AWS_DEFAULT_REGION``).
        s3_access_key_id: S3 credentials (``AWS_ACCESS_KEY_ID``); ``None`` lets the S3
            client find them itself (an instance role, for example).
        s3_secret_access_key: S3 credentials (``AWS_SECRET_ACCESS_KEY``).
        inference_threads: CPU threads the app server's model uses for one scan
            (``INFERENCE_THREADS``).
        archive_max_bytes: Most bytes a ZIP archive or folder of DICOM files (a patient's
            CD) may unpack to (``ARCHIVE_MAX_MB``).
        archive_max_files: Most files such an archive or folder may hold
            (``ARCHIVE_MAX_FILES``).
        archive_max_ratio: Largest accepted ratio of a ZIP member's unpacked size to its
            packed size (``ARCHIVE_MAX_RATIO``).
        pacs_url: The DICOMweb base URL of the hospital's PACS (``PACS_URL``), e.g.
            ``https://pacs.example.org/dicom-web``; ``None`` means no PACS is connected.
        pacs_username: The PACS account (``PACS_USERNAME``), for HTTP basic authentication;
            ``None`` sends none.
        pacs_password: Its password (``PACS_PASSWORD``).
        pacs_name: What the PACS is called for patients and clinicians (``PACS_NAME``), e.g.
            "St Mary's PACS".
        db_pool_size: PostgreSQL connections each app process keeps open (``DB_POOL_SIZE``).
        db_max_overflow: PostgreSQL connections it may open beyond them under a burst
            (``DB_MAX_OVERFLOW``).
        db_statement_timeout_ms: PostgreSQL cancels any statement running longer
            (``DB_STATEMENT_TIMEOUT_MS``); the user is told the database was too slow.
    """

    environment: str
    data_dir: Path
    shared_data_dir: Path
    max_upload_bytes: int
    database_url: str
    master_key: str | None
    idle_timeout_minutes: int
    session_max_hours: int
    cookie_secret: str | None
    trusted_proxies: frozenset[str]
    admin_username: str
    admin_password: str | None
    checkpoint_path: Path
    user_quota_bytes: int
    uploads_per_hour: int
    registrations_per_hour: int
    registrations_per_client_per_hour: int
    registrations_per_network_per_hour: int
    emergency_approval_minutes: int
    emergency_independence_days: int
    blob_url: str
    s3_endpoint_url: str | None
    s3_region: str | None
    s3_access_key_id: str | None
    s3_secret_access_key: str | None = field(repr=False)
    inference_threads: int = 1
    archive_max_bytes: int = 1024 * 1024 * 1024
    archive_max_files: int = 10_000
    archive_max_ratio: int = 100
    pacs_url: str | None = None
    pacs_username: str | None = None
    pacs_password: str | None = field(default=None, repr=False)
    pacs_name: str = "the hospital's PACS"
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_statement_timeout_ms: int = 15_000

    @property
    def is_local(self) -> bool:
        """Whether this is a developer's machine rather than a deployment."""
        return self.environment == "local"

    @property
    def blob_dir(self) -> Path | None:
        """Directory of encrypted image blobs; ``None`` when they are kept in a bucket."""
        parts = urlsplit(self.blob_url)
        return Path(unquote(parts.path)) if parts.scheme == "file" else None

    @property
    def key_file(self) -> Path:
        """Local-only master key file used when ``MASTER_KEY`` is unset."""
        return self.data_dir / "master.key"

    @property
    def cookie_key_file(self) -> Path:
        """Local-only cookie signing key file used when ``COOKIE_SECRET`` is unset."""
        return self.data_dir / "cookie.key"


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}.") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}.")
    return value


def _blob_url(env: dict[str, str], data_dir: Path) -> str:
    raw = (env.get("BLOB_URL") or "").strip()
    if not raw:
        return (data_dir / "blobs").as_uri()
    parts = urlsplit(raw)
    if parts.scheme == "s3" and parts.netloc:
        return raw
    if parts.scheme == "file" and parts.path.startswith("/") and not parts.netloc:
        return raw
    raise SettingsError(
        f"BLOB_URL must be file:///absolute/folder or s3://bucket[/prefix], got {raw!r}."
    )


def _proxies_env(env: dict[str, str]) -> frozenset[str]:
    entries = frozenset(
        part.strip() for part in env.get("TRUSTED_PROXIES", "").split(",") if part.strip()
    )
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise SettingsError(
                f"TRUSTED_PROXIES must list IP addresses or networks, got {entry!r}."
            ) from exc
    return entries


def argon2_profile(env: Mapping[str, str] | None = None) -> str:
    """The password-hashing cost profile: ``production`` unless a test suite asks for ``test``.

    Read at every password hash rather than once with :func:`load_settings`, so that the
    tests of hashing itself can ask for the production cost while the rest of a suite runs
    cheap.

    Args:
        env: Mapping to read instead of ``os.environ`` (tests).

    Returns:
        One of :data:`ARGON2_PROFILES`.

    Raises:
        SettingsError: ``ARGON2_PROFILE`` names an unknown profile, or ``test`` outside local
            use (``APP_ENV=production``), where cheap hashes would make stolen password hashes
            cheap to crack.
    """
    env = os.environ if env is None else env
    profile = env.get("ARGON2_PROFILE", "").strip().lower() or "production"
    if profile not in ARGON2_PROFILES:
        raise SettingsError(f"ARGON2_PROFILE must be 'production' or 'test', got {profile!r}.")
    if profile != "production" and env.get("APP_ENV", "local").strip().lower() != "local":
        raise SettingsError(
            f"ARGON2_PROFILE={profile} is for test suites; unset it outside local use, where "
            "passwords are hashed at full cost."
        )
    return profile


def _pacs_url(env: dict[str, str], environment: str) -> str | None:
    raw = (env.get("PACS_URL") or "").strip().rstrip("/")
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"PACS_URL must be an http(s) DICOMweb base URL, got {raw!r}.")
    if parts.username or parts.password:
        raise SettingsError(
            "PACS_URL must not hold credentials; set PACS_USERNAME and PACS_PASSWORD."
        )
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if environment != "local" and parts.scheme != "https" and not loopback:
        raise SettingsError(
            "PACS_URL must use https outside local use: films and credentials cross the network."
        )
    return raw


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from environment variables.

    Args:
        env: Mapping to read instead of ``os.environ`` (tests).

    Returns:
        The validated settings.

    Raises:
        SettingsError: A value is malformed, or a placeholder secret is used
            outside local use.
    """
    env = dict(os.environ if env is None else env)
    environment = env.get("APP_ENV", "local").strip().lower()
    if environment not in {"local", "production"}:
        raise SettingsError(f"APP_ENV must be 'local' or 'production', got {environment!r}.")
    data_dir = Path(env.get("DATA_DIR") or PROJECT_ROOT / ".data").expanduser().resolve()
    shared = Path(env.get("SHARED_DATA_DIR") or PROJECT_ROOT.parent / "shared" / "data")
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'app.db'}"
    master_key = env.get("MASTER_KEY") or None
    admin_password = env.get("ADMIN_PASSWORD") or None
    cookie_secret = env.get("COOKIE_SECRET") or None
    # Refused at start, not only at the first login, so a misconfigured server does not run.
    argon2_profile(env)
    if environment != "local":
        if master_key is None or master_key.strip().lower() in _PLACEHOLDER_SECRETS:
            raise SettingsError("MASTER_KEY must be set to a real key outside local use.")
        if admin_password is not None and admin_password.strip().lower() in _PLACEHOLDER_SECRETS:
            raise SettingsError("ADMIN_PASSWORD is a placeholder; choose a real password.")
        if cookie_secret is None or len(cookie_secret.strip()) < _MIN_COOKIE_SECRET:
            raise SettingsError(
                f"COOKIE_SECRET must be set to a random string of at least {_MIN_COOKIE_SECRET} "
                "characters outside local use."
            )
    return Settings(
        environment=environment,
        data_dir=data_dir,
        shared_data_dir=shared.expanduser().resolve(),
        max_upload_bytes=_int_env(env, "MAX_UPLOAD_MB", 50) * 1024 * 1024,
        database_url=database_url,
        master_key=master_key,
        idle_timeout_minutes=_int_env(env, "IDLE_TIMEOUT_MINUTES", 15),
        # A working day: a login does not outlive the shift it started in.
        session_max_hours=_int_env(env, "SESSION_MAX_HOURS", 12),
        cookie_secret=cookie_secret,
        trusted_proxies=_proxies_env(env),
        admin_username=env.get("ADMIN_USERNAME") or "admin",
        admin_password=admin_password,
        checkpoint_path=Path(
            env.get("MODEL_CHECKPOINT") or PROJECT_ROOT / "models" / "checkpoint.pt"
        ).resolve(),
        # 2 GB holds about 4000 scans at the stored working resolution (~0.5 MB each).
        user_quota_bytes=_int_env(env, "USER_QUOTA_MB", 2048) * 1024 * 1024,
        # Two a minute for an hour covers a patient importing an archive folder by folder.
        uploads_per_hour=_int_env(env, "UPLOADS_PER_HOUR", 120),
        registrations_per_hour=_int_env(env, "REGISTRATIONS_PER_HOUR", 60),
        # A family or a clinic sharing one address registers a few accounts, not dozens.
        registrations_per_client_per_hour=_int_env(env, "REGISTRATIONS_PER_CLIENT_PER_HOUR", 5),
        # A campus or a mobile provider's neighbourhood: a few families, far below the
        # overall number, so that a handful of networks cannot use up an hour's sign-ups.
        registrations_per_network_per_hour=_int_env(env, "REGISTRATIONS_PER_NETWORK_PER_HOUR", 10),
        # Long enough to reach a colleague on call, short enough that a request nobody
        # confirmed does not linger as a way in.
        emergency_approval_minutes=_int_env(env, "EMERGENCY_APPROVAL_MINUTES", 30),
        # A month: long enough for an account's owner to have logged in, found their records
        # or their colleagues' requests, and noticed anything done in their name.
        emergency_independence_days=_int_env(env, "EMERGENCY_INDEPENDENCE_DAYS", 30),
        blob_url=_blob_url(env, data_dir),
        s3_endpoint_url=env.get("S3_ENDPOINT_URL") or None,
        s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        s3_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        s3_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        # One: on a small machine shared with other work, a scan on two threads took 0.5 to
        # 1.4 s instead of 0.05 s on one (the threads wait for each other); batches in the
        # command-line tools keep torch's default.
        inference_threads=_int_env(env, "INFERENCE_THREADS", 1),
        # A CD holds 700 MB in a few hundred files; a hospital download of several CDs' worth
        # still fits. Real DICOM files pack at most about 10:1 (native pixels with black
        # borders); a member packed 100 times smaller is a decompression bomb.
        archive_max_bytes=_int_env(env, "ARCHIVE_MAX_MB", 1024) * 1024 * 1024,
        archive_max_files=_int_env(env, "ARCHIVE_MAX_FILES", 10_000),
        archive_max_ratio=_int_env(env, "ARCHIVE_MAX_RATIO", 100),
        pacs_url=_pacs_url(env, environment),
        pacs_username=env.get("PACS_USERNAME") or None,
        pacs_password=env.get("PACS_PASSWORD") or None,
        pacs_name=(env.get("PACS_NAME") or "").strip() or "the hospital's PACS",
        # 5 + 10 per process (SQLAlchemy's default): 6 replicas stay below PostgreSQL's
        # default 100 connections; past that, lower these or put PgBouncer in front.
        db_pool_size=_int_env(env, "DB_POOL_SIZE", 5),
        db_max_overflow=_int_env(env, "DB_MAX_OVERFLOW", 10),
        # Far above any request's statements (milliseconds, EXPLAIN in docs/SCALING.md), so
        # only a runaway or blocked statement is cancelled, before it holds a connection long.
        db_statement_timeout_ms=_int_env(env, "DB_STATEMENT_TIMEOUT_MS", 15_000),
    )
