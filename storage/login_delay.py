"""Progressive login delays: slow a password guesser down without locking the owner out.

Failures are counted per (account, client) pair and per client. After a few failures of a
pair, the next attempt from that pair is heard only after a delay that doubles with each
further failure, up to :data:`MAX_DELAY`. The owner, logging in from another client, is not
delayed by someone else's guesses: nobody can lock an account by failing on purpose. The
per-client count, with a larger allowance, slows one client trying one password on many
accounts (password spraying). Attempts before the delay is over are refused at once, without
checking the password; the server never sleeps. Such refusals are counted on the delayed row
and reported, as one number, with the next attempt that is heard and audited: one audit entry
per refusal would let a guesser flood the audit chain that every record access also writes to.

Counts live in the database (``login_throttle``), so every app process applies them, and a
pair's count is forgotten after :data:`FORGET_AFTER` without failures or at a good login.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from storage import schema

#: Failures of one (account, client) pair heard without delay.
PAIR_ALLOWANCE = 3
#: Failures of one client, over all accounts, heard without delay.
CLIENT_ALLOWANCE = 10
#: The longest delay, however many failures.
MAX_DELAY = timedelta(minutes=5)
#: A count with no failure for this long starts again from zero.
FORGET_AFTER = timedelta(hours=1)
#: Stands for the client when its address is unknown (all such attempts share one count).
UNKNOWN_CLIENT = "unknown"


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


def keys(username: str, client: str | None) -> tuple[str, str]:
    """The pair key and the client key of an attempt."""
    who = (client or UNKNOWN_CLIENT)[:120]
    return f"pair:{username[:64]}|{who}", f"client:{who}"


def not_before(session: Session, username: str, client: str | None) -> datetime | None:
    """When the next attempt of this pair or client is heard, or ``None`` when it is now."""
    now = schema.utcnow()
    waits = [
        row.locked_until
        for row in (session.get(schema.LoginThrottle, key) for key in keys(username, client))
        if row is not None and row.locked_until is not None and row.locked_until > now
    ]
    return max(waits, default=None)


def record_refusal(session: Session, username: str, client: str | None) -> None:
    """Count an attempt refused during a delay on the pair's row, or the client's when only
    the client is delayed (see :func:`take_refusals`)."""
    now = schema.utcnow()
    for key in keys(username, client):
        row = session.get(schema.LoginThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            row.refused += 1
            session.add(row)
            return


def take_refusals(session: Session, username: str, client: str | None) -> int:
    """The attempts of this pair and client refused since last asked, counted back to zero.

    Returns:
        How many attempts were refused during delays; the caller audits the number.
    """
    total = 0
    for key in keys(username, client):
        row = session.get(schema.LoginThrottle, key)
        if row is not None and row.refused:
            total += row.refused
            row.refused = 0
            session.add(row)
    return total


def record_failure(session: Session, username: str, client: str | None) -> datetime | None:
    """Count a failed attempt for the pair and the client.

    Returns:
        When the next attempt will be heard, or ``None`` when it may follow at once.
    """
    now = schema.utcnow()
    pair, client_key = keys(username, client)
    ready = [
        _count(session, pair, PAIR_ALLOWANCE, now),
        _count(session, client_key, CLIENT_ALLOWANCE, now),
    ]
    latest = max(ready)
    return latest if latest > now else None


def forget_pair(session: Session, username: str, client: str | None) -> None:
    """Forget the pair's failures after a good login (the client's count stays)."""
    row = session.get(schema.LoginThrottle, keys(username, client)[0])
    if row is not None:
        session.delete(row)


def clear_account(session: Session, username: str) -> int:
    """Forget every pair count of an account (an admin's unlock).

    Returns:
        How many pair counts were removed.
    """
    table = schema.LoginThrottle
    prefix = f"pair:{username[:64]}|"
    # Usernames cannot contain "|", so the prefix names this account's pairs only.
    result = session.exec(delete(table).where(col(table.key).startswith(prefix, autoescape=True)))
    return int(result.rowcount or 0)


def _count(session: Session, key: str, allowance: int, now: datetime) -> datetime:
    row = session.get(schema.LoginThrottle, key) or schema.LoginThrottle(key=key, failures=0)
    # ``locked_until`` doubles as the time of the last failure (it is never earlier).
    if row.locked_until is not None and now - row.locked_until > FORGET_AFTER:
        row.failures = 0
    row.failures += 1
    row.locked_until = now + delay_after(row.failures, allowance)
    session.add(row)
    return row.locked_until
