"""The audit trail's anchors: its head, written outside the database after every commit.

The chain's head row (:mod:`storage.audit`) carries a MAC, so nobody without the master key
can forge a head; but whoever can write the database can keep a *copy* of an old head row,
later delete every event after it and put the copy back: a valid, shorter chain. The
database alone cannot tell an old head from the current one, so after each commit that
appended events, the last of them is also written to the blob store as an **anchor**:
``audit-anchor/<key id>/<20-digit sequence number>`` holding the event's hash and an HMAC
over both under a key derived from the master key. Anchors are written once (the store
refuses an existing key) and never replaced, moved or deleted by the app.

Why after the commit: an anchor then only ever names a committed event, so a transaction
that rolled back (an error, a retried deadlock, a crash before the commit) never leaves an
anchor ahead of the chain, and an anchor beyond the database's head always means committed
events were lost. A crash between the commit and the anchor, or a store that refuses the
write, leaves the newest events without their own anchor; the next anchor covers them
(the hash chain links every earlier event to it).

The checks (:mod:`storage.audit`): every append, holding the head lock, refuses when an
anchor exists one past the head (so a cut trail is not continued: its next sequence numbers
are taken); :func:`storage.audit.verify_chain` and the start-up check refuse a head behind
the highest anchor, or whose own anchor names another event. An anchor whose MAC does not
verify counts for nothing: whoever can write the store but not read the master key could
otherwise stop every audited action by planting one.

Each master key has its own folder (the key id is the start of its public fingerprint), so
a rotation neither needs the old key to check the old folder nor rewrites an anchor: the
rotation checks the old folder first and then anchors the head in the new one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

from sqlalchemy import event
from sqlmodel import Session

from storage import crypto
from storage.blobs import ANCHORS, BlobStore, BlobStoreUnavailable

_LOG = logging.getLogger(__name__)

#: Purpose of the master subkey that signs anchors (see :func:`storage.crypto.derive_subkey`).
PURPOSE = "audit-anchor"
_PENDING = "cxr_audit_anchor"


@dataclass(frozen=True)
class Anchored:
    """An event as its anchor names it."""

    seq: int
    hash: str


@dataclass(frozen=True)
class Anchors:
    """The anchors one master key signs, in one blob store."""

    blobs: BlobStore
    key: bytes
    folder: str

    @classmethod
    def of(cls, blobs: BlobStore, master: bytes) -> Anchors:
        """The anchors of ``master`` in ``blobs``."""
        key_id = crypto.key_check_value(master)[:16]
        return cls(blobs, crypto.derive_subkey(master, PURPOSE), f"{ANCHORS}/{key_id}")

    def read(self, seq: int) -> Anchored | None:
        """The anchor of event ``seq``; ``None`` when there is none or it does not verify.

        Raises:
            BlobStoreUnavailable: The store could not be reached.
        """
        data = self.blobs.read_anchor(self._name(seq))
        if data is None:
            return None
        try:
            body = json.loads(data)
            anchored = Anchored(int(body["seq"]), str(body["hash"]))
            valid = anchored.seq == seq and hmac.compare_digest(
                str(body["mac"]), self._mac(anchored)
            )
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            _LOG.warning("Audit anchor %s does not verify; it is ignored.", self._name(seq))
            return None
        return anchored

    def highest_from(self, seq: int) -> Anchored | None:
        """The valid anchor of the highest sequence number at or above ``seq``, if any.

        Raises:
            BlobStoreUnavailable: The store could not be reached.
        """
        for key in reversed(self.blobs.anchors_after(self.folder, self._name(seq - 1))):
            anchored = self.read(int(key.rsplit("/", 1)[1]))
            if anchored is not None:
                return anchored
        return None

    def write(self, anchored: Anchored) -> None:
        """Anchor an event; an anchor already there is kept, and a different one reported.

        Raises:
            BlobStoreUnavailable: The store could not take it.
        """
        body = {"seq": anchored.seq, "hash": anchored.hash, "mac": self._mac(anchored)}
        try:
            self.blobs.write_anchor(self._name(anchored.seq), json.dumps(body).encode())
        except FileExistsError:
            found = self.read(anchored.seq)
            if found is not None and found != anchored:
                _LOG.error(
                    "Audit event %s was committed, but the anchor of that number names a "
                    "different event: events were removed from the database. Run verify-audit.",
                    anchored.seq,
                )

    def after_commit(self, session: Session, anchored: Anchored) -> None:
        """Write the anchor once ``session``'s transaction has committed (nothing if it does not).

        Only the last call of a transaction counts: its event's hash covers every earlier one.
        """
        session.info[_PENDING] = (self, anchored)

    def _name(self, seq: int) -> str:
        return f"{self.folder}/{max(seq, 0):020d}"

    def _mac(self, anchored: Anchored) -> str:
        message = f"{anchored.seq}|{anchored.hash}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()


@event.listens_for(Session, "after_commit")
def _write_pending(session: Session) -> None:
    pending: tuple[Anchors, Anchored] | None = session.info.pop(_PENDING, None)
    if pending is None:
        return
    anchors, anchored = pending
    # The action has committed: a store that fails now must not turn it into an error.
    try:
        anchors.write(anchored)
    except (OSError, BlobStoreUnavailable):
        _LOG.warning("Could not anchor audit event %s; the next anchor covers it.", anchored.seq)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
