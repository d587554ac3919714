"""Progressive login delays: slow a password guesser down without locking the owner out.

Failures are counted per (account, client) pair, per client and per client network (see
:func:`counts_for`). A client is counted by network, not only by full address: an IPv6 host
picks any address of its /64, so a /64 is one client, and an IPv4 client is its address;
every failure also counts for its wider network (IPv4 /24, IPv6 /48), with a larger
allowance, so hopping between addresses of one network gains a guesser little. After a few
failures of a pair, the next attempt from that pair is heard only after a delay that doubles
with each further failure, up to :data:`MAX_DELAY`. The per-client and per-network counts
slow one client or network trying one password on many accounts (password spraying).

The owner is not delayed by someone else's guesses: no account is ever locked, and a browser
the account logged in from before (known by its pre-login value, see
:mod:`storage.session_cookie`) is counted on its own, apart from every address and network,
so not even a guesser at the same or an unknown address delays the owner there.

Attempts before the delay is over are refused at once, without checking the password; the
server never sleeps. Such refusals are counted on the delayed row and reported, as one number,
with the next attempt that is heard and audited: one audit entry per refusal would let a
guesser flood the audit chain that every record access also writes to.

Counts live in the database (``login_throttle``), so every app process applies them, and a
count is forgotten after :data:`FORGET_AFTER` without failures, a pair's at a good login.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col

from core.clients import client_units
from storage import schema

#: Failures of one (account, client) pair heard without delay.
PAIR_ALLOWANCE = 3
#: Failures of one client, over all accounts, heard without delay.
CLIENT_ALLOWANCE = 10
#: Failures of one network (IPv4 /24, IPv6 /48), over all clients and accounts, heard
#: without delay: a few clients' worth, so that one guesser in a shared network slows its
#: neighbours only once it has failed far more often than a person would.
NETWORK_ALLOWANCE = 30
#: The longest delay, however many failures.
MAX_DELAY = timedelta(minutes=5)
#: A count with no failure for this long starts again from zero.
FORGET_AFTER = timedelta(hours=1)
#: Stands for the client when its address is unknown (all such attempts share one count,
#: except those from a browser the account knows).
UNKNOWN_CLIENT = "unknown"
#: A browser stays known to an account this long after its last good login there.
KNOWN_DEVICE_FOR = timedelta(days=90)

#: The keys and allowances an attempt is counted under, the pair's (or known browser's) first.
Counts = list[tuple[str, int]]


def delay_after(failures: int, allowance: int) -> timedelta:
    """The wait before the next attempt after ``failures`` failures: 2^(n - allowance) s.

    Args:
        failures: Failures counted so far.
        allowance: Failures heard without delay.

    Returns:
        Zero within the allowance, then 1 s, 2 s, 4 s, ... up to :data:`MAX_DELAY`.
    """
    if failures < allowance:
        return timedelta(0)
    exponent = failures - allowance
    if exponent >= math.log2(MAX_DELAY.total_seconds()):
        return MAX_DELAY
    return timedelta(seconds=2**exponent)


def counts_for(
    session: Session, username: str, client: str | None, device: str | None = None
) -> Counts:
    """The counts a login attempt is kept under.

    Args:
        session: Open session.
        username: The normalised username tried.
        client: The client's address (:func:`core.clients.client_address`), or ``None``.
        device: The browser's pre-login value, or ``None`` when it has none.

    Returns:
        From a browser the account logged in from within :data:`KNOWN_DEVICE_FOR`: that
        browser's own count only. Otherwise the pair (account, client), the client, and the
        client's network when it has one; a client is an IPv4 address or an IPv6 /64.
    """
    name = username[:64]
    if device:
        known = session.get(schema.LoginDevice, _device_key(name, device))
        if known is not None and schema.utcnow() - known.last_login_at < KNOWN_DEVICE_FOR:
            return [(f"device:{known.key}", PAIR_ALLOWANCE)]
    units = client_units(client) if client else None
    host = (units.host if units else UNKNOWN_CLIENT)[:120]
    counts = [(f"pair:{name}|{host}", PAIR_ALLOWANCE), (f"client:{host}", CLIENT_ALLOWANCE)]
    if units is not None and units.network is not None:
        counts.append((f"net:{units.network}", NETWORK_ALLOWANCE))
    return counts


def not_before(session: Session, counts: Counts) -> datetime | None:
    """When the next attempt under these counts is heard, or ``None`` when it is now."""
    now = schema.utcnow()
    waits = [
        row.locked_until
        for row in (session.get(schema.LoginThrottle, key) for key, _ in counts)
        if row is not None and row.locked_until is not None and row.locked_until > now
    ]
    return max(waits, default=None)


def record_refusal(session: Session, counts: Counts) -> None:
    """Count an attempt refused during a delay on the first delayed row (see
    :func:`take_refusals`)."""
    now = schema.utcnow()
    for key, _ in counts:
        row = session.get(schema.LoginThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            row.refused += 1
            session.add(row)
            return


def take_refusals(session: Session, counts: Counts) -> int:
    """The attempts under these counts refused since last asked, counted back to zero.

    Returns:
        How many attempts were refused during delays; the caller audits the number.
    """
    total = 0
    for key, _ in counts:
        row = session.get(schema.LoginThrottle, key)
        if row is not None and row.refused:
            total += row.refused
            row.refused = 0
            session.add(row)
    return total


def record_failure(session: Session, counts: Counts) -> datetime | None:
    """Count a failed attempt under every one of its counts.

    Returns:
        When the next attempt will be heard, or ``None`` when it may follow at once.
    """
    now = schema.utcnow()
    latest = max(_count(session, key, allowance, now) for key, allowance in counts)
    return latest if latest > now else None


def record_success(session: Session, username: str, counts: Counts, device: str | None) -> None:
    """After a good login: forget the pair's (or browser's) failures, and know the browser.

    The client's and network's counts stay: a guesser who also holds one good password must
    not clear its spraying count with it.
    """
    row = session.get(schema.LoginThrottle, counts[0][0])
    if row is not None:
        session.delete(row)
    if device:
        key = _device_key(username[:64], device)
        known = session.get(schema.LoginDevice, key) or schema.LoginDevice(key=key)
        known.last_login_at = schema.utcnow()
        session.add(known)


def clear_account(session: Session, username: str) -> int:
    """Forget every pair and known-browser count of an account (an admin's unlock).

    Returns:
        How many counts were removed.
    """
    table = schema.LoginThrottle
    name = username[:64]
    # Usernames cannot contain "|", so each prefix names this account's counts only.
    result = session.exec(
        delete(table).where(
            or_(
                col(table.key).startswith(f"pair:{name}|", autoescape=True),
                col(table.key).startswith(f"device:{name}|", autoescape=True),
            )
        )
    )
    return int(result.rowcount or 0)


def _device_key(username: str, device: str) -> str:
    # Only a hash: the database never holds a value that would make a browser known.
    return f"{username}|{hashlib.sha256(device.encode()).hexdigest()}"


def _count(session: Session, key: str, allowance: int, now: datetime) -> datetime:
    row = session.get(schema.LoginThrottle, key) or schema.LoginThrottle(key=key, failures=0)
    # ``locked_until`` doubles as the time of the last failure (it is never earlier).
    if row.locked_until is not None and now - row.locked_until > FORGET_AFTER:
        row.failures = 0
    row.failures += 1
    row.locked_until = now + delay_after(row.failures, allowance)
    session.add(row)
    return row.locked_until
