"""Tests for storage.accounts: registration, login throttling, passwords, admin actions."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from core.settings import load_settings
from storage import accounts, audit, login_delay, schema
from storage.accounts import AccountError, AuthError, PasswordPolicyError
from storage.bootstrap import open_database
from storage.db import Database
from storage.policy import AccessDenied
from storage.scans import list_scans
from tests.storage.conftest import ADMIN_PASSWORD, PASSWORD


def _user(db: Database, name: str) -> schema.User:
    with db.transaction() as session:
        return session.exec(select(schema.User).where(schema.User.username == name)).one()


def _actions(db: Database) -> list[str]:
    with db.transaction() as session:
        return list(session.exec(select(schema.AuditEvent.action).order_by(schema.AuditEvent.seq)))


@pytest.mark.usefixtures("production_argon2")
def test_register_defaults_to_patient_and_logs_in(database) -> None:
    actor = accounts.register(database, "Alice", PASSWORD)
    assert (actor.username, actor.role) == ("alice", "patient")
    assert accounts.authenticate(database, "ALICE", PASSWORD, "10.0.0.1") == actor
    assert _user(database, "alice").password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize("password", ["short1", "password123", "qwerty123", "alice-the-1"])
def test_weak_passwords_are_refused(database, password) -> None:
    with pytest.raises(PasswordPolicyError):
        accounts.register(database, "alice-the-1", password)


@pytest.mark.parametrize("name", ["ab", "has space", "x" * 65, "semi;colon"])
def test_malformed_usernames_are_refused(database, name) -> None:
    with pytest.raises(AccountError):
        accounts.register(database, name, PASSWORD)


def test_duplicate_username_is_refused_case_insensitively(database) -> None:
    accounts.register(database, "alice", PASSWORD)
    with pytest.raises(AccountError):
        accounts.register(database, "ALICE", PASSWORD)


def test_other_roles_need_an_admin(database, admin, make_user) -> None:
    patient = make_user("pat")
    with pytest.raises(AccessDenied):
        accounts.register(database, "doc", PASSWORD, role="clinician")
    with pytest.raises(AccessDenied):
        accounts.register(database, "doc", PASSWORD, role="clinician", by=patient)
    doc = accounts.register(database, "doc", PASSWORD, role="clinician", by=admin)
    assert doc.role == "clinician"


def test_wrong_password_and_unknown_user_get_the_same_message(database, make_user) -> None:
    make_user("alice")
    with pytest.raises(AuthError) as wrong:
        accounts.authenticate(database, "alice", "not the password", "c1")
    with pytest.raises(AuthError) as unknown:
        accounts.authenticate(database, "nobody", "not the password", "c2")
    assert str(wrong.value) == str(unknown.value) == accounts.GENERIC_LOGIN_ERROR
    assert _actions(database)[-2:] == ["login_failed", "login_failed"]


def _fail(db: Database, username: str, client: str | None, times: int) -> None:
    for attempt in range(times):
        with pytest.raises(AuthError):
            accounts.authenticate(db, username, f"wrong guess {attempt}", client)


def _delay_over(db: Database, *, after: timedelta = timedelta(seconds=-1)) -> None:
    """Move every pending delay into the past (the test does not wait), or to ``after`` from
    now (so that a slow database cannot let one of many attempts through)."""
    with db.transaction() as session:
        for row in session.exec(select(schema.LoginThrottle)).all():
            row.locked_until = schema.utcnow() + after
            session.add(row)


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(1, 0), (2, 0), (3, 1), (4, 2), (6, 8), (11, 256), (12, 300), (99, 300)],
)
def test_pair_delay_doubles_after_three_failures_up_to_five_minutes(failures, seconds) -> None:
    delay = login_delay.delay_after(failures, login_delay.PAIR_ALLOWANCE)
    assert delay == timedelta(seconds=seconds)


def test_hammering_an_account_does_not_lock_out_its_owner(database, make_user) -> None:
    """Reported: anyone could lock any account, the admin's included, by failing on purpose."""
    make_user("alice")
    _fail(database, "alice", "203.0.113.66", 3)
    # The attacker keeps going (refused at once while the delay lasts).
    _fail(database, "alice", "203.0.113.66", 20)
    # The owner, from their own client, logs in at once with the right password.
    assert accounts.authenticate(database, "alice", PASSWORD, "198.51.100.1").username == "alice"
    # The admin account cannot be locked either.
    _fail(database, "admin", "203.0.113.66", 10)
    assert accounts.authenticate(database, "admin", ADMIN_PASSWORD, "192.0.2.10").role == "admin"


def test_delayed_pair_is_refused_even_with_the_right_password_and_told_when(
    database, make_user
) -> None:
    make_user("alice")
    _fail(database, "alice", "c1", 3)
    with pytest.raises(AuthError, match=r"try again in \d+ seconds?\.$"):
        accounts.authenticate(database, "alice", PASSWORD, "c1")
    _delay_over(database)
    assert accounts.authenticate(database, "alice", PASSWORD, "c1").username == "alice"
    # A good login forgets the pair's failures.
    with database.transaction() as session:
        assert session.get(schema.LoginThrottle, "pair:alice|c1") is None


def _audit_events(db: Database) -> list[schema.AuditEvent]:
    with db.transaction() as session:
        return list(session.exec(select(schema.AuditEvent).order_by(schema.AuditEvent.seq)))


def test_a_flood_of_refused_logins_does_not_flood_the_audit_trail(database, make_user) -> None:
    """Attack: hammer a delayed account; each refusal once wrote an audit entry, so a guesser
    could grow the chain (which every record access also writes to) without limit."""
    make_user("alice")
    _fail(database, "alice", "203.0.113.66", 3)
    _delay_over(database, after=timedelta(hours=1))
    before = len(_audit_events(database))
    _fail(database, "alice", "203.0.113.66", 200)
    assert len(_audit_events(database)) == before, "refusals are counted, not audited"
    _delay_over(database)
    _fail(database, "alice", "203.0.113.66", 1)
    (heard,) = _audit_events(database)[before:]
    details = json.loads(heard.details)
    assert heard.action == "login_failed" and details["refused_while_delayed"] == 200
    # The count was handed over once: the next heard attempt does not repeat it.
    _delay_over(database)
    assert accounts.authenticate(database, "alice", PASSWORD, "203.0.113.66").username == "alice"
    login = json.loads(_audit_events(database)[-1].details)
    assert "refused_while_delayed" not in login


def test_refusals_before_a_good_login_are_reported_with_it(database, make_user) -> None:
    make_user("alice")
    _fail(database, "alice", "c1", 3)
    _delay_over(database, after=timedelta(hours=1))
    _fail(database, "alice", "c1", 4)
    _delay_over(database)
    assert accounts.authenticate(database, "alice", PASSWORD, "c1").username == "alice"
    last = _audit_events(database)[-1]
    assert last.action == "login" and json.loads(last.details)["refused_while_delayed"] == 4


def test_unknown_usernames_are_delayed_like_real_ones(database, make_user) -> None:
    make_user("alice")
    with pytest.raises(AuthError) as real:
        _fail(database, "alice", "c1", 3)
        accounts.authenticate(database, "alice", "wrong again", "c1")
    with pytest.raises(AuthError) as ghost:
        _fail(database, "ghost", "c2", 3)
        accounts.authenticate(database, "ghost", "wrong again", "c2")
    assert re.sub(r"\d+", "N", str(real.value)) == re.sub(r"\d+", "N", str(ghost.value))


def test_password_spraying_from_one_client_is_slowed(database, make_user) -> None:
    make_user("alice")
    for index in range(login_delay.CLIENT_ALLOWANCE):
        _fail(database, f"victim{index}", "203.0.113.9", 1)
    with pytest.raises(AuthError, match="try again in"):
        accounts.authenticate(database, "alice", PASSWORD, "203.0.113.9")
    assert accounts.authenticate(database, "alice", PASSWORD, "198.51.100.1").username == "alice"


def _heard(db: Database) -> int:
    """Failed logins that were heard (password checked and audited), not refused at once."""
    return _actions(db).count("login_failed")


def test_rotating_addresses_within_one_ipv6_64_are_delayed(database, admin) -> None:
    """The attack: one IPv6 host picks a new address of its /64 for every guess on ``admin``
    (30 of 30 were heard without delay when counts were kept per full address)."""
    refused = 0
    for guess in range(30):
        address = f"2001:db8:7:42:{guess + 1:x}::{guess + 7:x}"
        with pytest.raises(AuthError) as caught:
            accounts.authenticate(database, "admin", f"guess {guess}", address)
        refused += "try again in" in str(caught.value)
    # Three heard at once, then a delay doubling from 1 s: a slow run may hear one or two more.
    assert _heard(database) <= login_delay.PAIR_ALLOWANCE + 2
    assert refused >= 25
    # Another /64 of the same site is not this client, and the admin there is not delayed.
    assert accounts.authenticate(database, "admin", ADMIN_PASSWORD, "2001:db8:7:43::1") == admin


def test_rotating_addresses_within_one_ipv4_24_are_delayed(database, admin) -> None:
    """Per address an IPv4 guesser gets its allowance; its whole /24 gets a larger one."""
    _delay_over(database)
    for host in range(1, login_delay.NETWORK_ALLOWANCE + 1):
        with pytest.raises(AuthError):
            accounts.authenticate(database, "admin", f"guess {host}", f"198.51.100.{host}")
    _delay_over(database, after=timedelta(hours=1))  # hold the network's delay while we look
    with pytest.raises(AuthError, match="try again in"):
        accounts.authenticate(database, "admin", ADMIN_PASSWORD, "198.51.100.200")
    assert _heard(database) == login_delay.NETWORK_ALLOWANCE
    assert accounts.authenticate(database, "admin", ADMIN_PASSWORD, "198.51.101.1") == admin


def test_owner_on_a_known_browser_is_never_delayed_by_others_guesses(database, make_user) -> None:
    """A guesser without a known address delays everyone else without one (they share one
    count), but not the owner in a browser the account logged in from before; nor does the
    guesser in the owner's own network."""
    alice = make_user("alice")
    assert accounts.authenticate(database, "alice", PASSWORD, None, device="alice's laptop")
    _fail(database, "alice", None, 6)
    _fail(database, "alice", "203.0.113.9", 40)
    _delay_over(database, after=timedelta(hours=1))  # every count delayed while we look
    for client, device in ((None, None), (None, "the guesser's browser"), ("203.0.113.10", None)):
        with pytest.raises(AuthError, match="try again in"):
            accounts.authenticate(database, "alice", PASSWORD, client, device=device)
    for client in (None, "203.0.113.9", "203.0.113.10"):
        assert (
            accounts.authenticate(database, "alice", PASSWORD, client, device="alice's laptop")
            == alice
        )
    # The owner's own mistakes there are still slowed, on that browser's own count.
    for attempt in range(login_delay.PAIR_ALLOWANCE):
        with pytest.raises(AuthError):
            accounts.authenticate(
                database, "alice", f"typo {attempt}", None, device="alice's laptop"
            )
    _delay_over(database, after=timedelta(hours=1))
    with pytest.raises(AuthError, match="try again in"):
        accounts.authenticate(database, "alice", PASSWORD, None, device="alice's laptop")


def test_counts_are_forgotten_after_an_hour_without_failures(database, make_user) -> None:
    make_user("alice")
    _fail(database, "alice", "c1", 2)
    with database.transaction() as session:
        row = session.get(schema.LoginThrottle, "pair:alice|c1")
        row.locked_until = schema.utcnow() - login_delay.FORGET_AFTER - timedelta(minutes=1)
        session.add(row)
    _fail(database, "alice", "c1", 1)
    with database.transaction() as session:
        assert session.get(schema.LoginThrottle, "pair:alice|c1").failures == 1


def test_admin_lifts_an_accounts_delays_audited(database, admin, make_user) -> None:
    alice = make_user("alice")
    _fail(database, "alice", "c1", 5)
    _fail(database, "alice", "c2", 5)
    _fail(database, "alice_b", "c1", 5)  # another account whose name starts alike
    with pytest.raises(AccessDenied):
        accounts.admin_clear_throttle(database, alice, "alice")
    assert accounts.admin_clear_throttle(database, admin, "Alice") == 2
    assert _actions(database)[-1] == "clear_login_delay"
    assert accounts.authenticate(database, "alice", PASSWORD, "c1").username == "alice"
    with database.transaction() as session:
        assert session.get(schema.LoginThrottle, "pair:alice_b|c1") is not None
    with pytest.raises(AccountError):
        accounts.admin_clear_throttle(database, admin, "nobody")


def test_admin_created_accounts_must_change_their_password(database, admin) -> None:
    doc = accounts.register(database, "doc", PASSWORD, role="clinician", by=admin)
    assert accounts.must_change_password(database, doc)
    patient = accounts.register(database, "pat", PASSWORD)
    assert not accounts.must_change_password(database, patient)


@pytest.mark.usefixtures("production_argon2")
def test_old_hash_parameters_are_upgraded_at_login(database, make_user) -> None:
    make_user("alice")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with database.transaction() as session:
        user = session.exec(select(schema.User).where(schema.User.username == "alice")).one()
        user.password_hash = weak
        session.add(user)
    accounts.authenticate(database, "alice", PASSWORD, None)
    upgraded = _user(database, "alice").password_hash
    assert upgraded != weak and "m=19456,t=2,p=1" in upgraded


def test_change_password(database, make_user) -> None:
    alice = make_user("alice")
    with pytest.raises(AuthError):
        accounts.change_password(database, alice, "not current pw", "brand new secret")
    with pytest.raises(PasswordPolicyError):
        accounts.change_password(database, alice, PASSWORD, PASSWORD)
    with pytest.raises(PasswordPolicyError):
        accounts.change_password(database, alice, PASSWORD, "letmein")
    accounts.change_password(database, alice, PASSWORD, "brand new secret")
    with pytest.raises(AuthError):
        accounts.authenticate(database, "alice", PASSWORD, None)
    assert accounts.authenticate(database, "alice", "brand new secret", None) == alice


def test_admin_reset_forces_a_change(database, admin, make_user) -> None:
    alice = make_user("alice")
    temporary = accounts.admin_reset_password(database, admin, "alice")
    assert accounts.must_change_password(database, alice)
    assert accounts.authenticate(database, "alice", temporary, None) == alice
    accounts.change_password(database, alice, temporary, "my own new secret")
    assert not accounts.must_change_password(database, alice)
    assert "admin_reset_password" in _actions(database)


def test_disabling_ends_access_immediately(database, admin, make_user) -> None:
    alice = make_user("alice")
    accounts.set_disabled(database, admin, "alice", True)
    assert not accounts.is_active(database, alice)
    with pytest.raises(AccessDenied):
        list_scans(database, alice, alice.user_id)
    with pytest.raises(AuthError):
        accounts.authenticate(database, "alice", PASSWORD, None)
    accounts.set_disabled(database, admin, "alice", False)
    assert accounts.is_active(database, alice)
    with pytest.raises(AccessDenied):
        accounts.set_disabled(database, admin, "admin", True)


def test_list_users_shows_accounts_without_secrets(database, admin, make_user) -> None:
    make_user("alice")
    users = {u.username: u for u in accounts.list_users(database, admin)}
    assert set(users) == {"admin", "alice"}
    assert not hasattr(users["alice"], "password_hash")


def test_oidc_login_maps_to_one_local_patient(database) -> None:
    first = accounts.oidc_login(database, "https://idp|42", "Jane.Doe@example.org")
    again = accounts.oidc_login(database, "https://idp|42", "renamed")
    assert first == again and first.role == "patient"
    assert first.username == "jane.doe@example.org"
    # A password login cannot reach a single-sign-on-only account.
    with pytest.raises(AuthError):
        accounts.authenticate(database, first.username, "", None)


def test_logout_is_audited(database, make_user) -> None:
    alice = make_user("alice")
    accounts.logout(database, alice, None)
    assert _actions(database)[-1] == "logout"
    assert audit.verify_chain(database).ok


def test_first_admin_gets_a_one_time_password(settings_env, caplog) -> None:
    env = {k: v for k, v in settings_env.items() if k != "ADMIN_PASSWORD"}
    with caplog.at_level(logging.WARNING, logger="storage.accounts"):
        db = open_database(load_settings(env))
    try:
        match = re.search(r"one-time password: (\S+)", caplog.text)
        assert match, caplog.text
        admin = accounts.authenticate(db, "admin", match.group(1), None)
        assert admin.role == "admin"
        assert accounts.must_change_password(db, admin)
    finally:
        db.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="storage.accounts"):
        open_database(load_settings(env)).close()
    assert "one-time password" not in caplog.text


# --------------------------------------------------------------------------- registration rate


#: 4 self-registrations an hour before the admins are alerted, 2 from one client, 3 from
#: one network.
LIMITS = {
    "REGISTRATIONS_PER_HOUR": "4",
    "REGISTRATIONS_PER_CLIENT_PER_HOUR": "2",
    "REGISTRATIONS_PER_NETWORK_PER_HOUR": "3",
}


@pytest.fixture
def registration_limited(settings_env) -> Iterator[Database]:
    """A database with the small registration :data:`LIMITS`."""
    db = open_database(load_settings({**settings_env, **LIMITS}))
    yield db
    db.close()


def _usernames(db: Database) -> set[str]:
    with db.transaction() as session:
        return set(session.exec(select(schema.User.username)).all())


def test_registrations_from_one_client_are_limited_per_hour(registration_limited) -> None:
    db = registration_limited
    accounts.register(db, "bot1", PASSWORD, client_id="203.0.113.9")
    accounts.register(db, "bot2", PASSWORD, client_id="203.0.113.9")

    with pytest.raises(accounts.RegistrationRateExceeded) as caught:
        accounts.register(db, "bot3", PASSWORD, client_id="203.0.113.9")

    assert str(caught.value) == (
        "Too many accounts have been created recently; please try again in an hour."
    )
    assert _usernames(db) == {"admin", "bot1", "bot2"}
    accounts.register(db, "neighbour", PASSWORD, client_id="198.51.100.7")


def test_registration_limits_hold_across_processes_and_the_overall_one_alerts(
    registration_limited, settings_env
) -> None:
    admin_db = registration_limited
    other = open_database(load_settings({**settings_env, **LIMITS}))
    try:
        for index, db in enumerate([registration_limited, other, registration_limited]):
            accounts.register(db, f"bot{index}", PASSWORD, client_id=f"10.0.0.{index}")
        # A fourth address of the same /24, from either process: the network's limit.
        with pytest.raises(accounts.RegistrationRateExceeded):
            accounts.register(other, "bot9", PASSWORD, client_id="10.0.0.9")
        # Without an address no network limit holds, so the overall number does.
        accounts.register(other, "anon1", PASSWORD)
        with pytest.raises(accounts.RegistrationRateExceeded):
            accounts.register(registration_limited, "anon2", PASSWORD)
        # The overall number reached alerts the admins, once, and refuses nobody with an
        # address.
        accounts.register(other, "patient1", PASSWORD, client_id="192.0.2.5")
        accounts.register(admin_db, "patient2", PASSWORD, client_id="2001:db8:5::1")
    finally:
        other.close()
    assert _usernames(admin_db) == {
        "admin",
        "bot0",
        "bot1",
        "bot2",
        "anon1",
        "patient1",
        "patient2",
    }
    assert _actions(admin_db).count(accounts.REGISTRATION_ALERT) == 1
    admin = accounts.authenticate(admin_db, "admin", ADMIN_PASSWORD, None)
    [alert] = accounts.registration_alerts(admin_db, admin)
    assert schema.utcnow() - alert < timedelta(minutes=5)
    with pytest.raises(AccessDenied):
        accounts.registration_alerts(admin_db, accounts.find_actor(admin_db, "patient1"))


def test_a_handful_of_networks_cannot_lock_a_new_network_out_of_registering(
    database, admin, monkeypatch
) -> None:
    """The attack: 11 networks take the hour's sign-ups (with limits per address and overall,
    11 addresses used 54 of 60, after which a patient from a new address was refused). With
    the default limits each network is held at its own cap, the overall number only alerts,
    and the patient from a twelfth network registers."""
    # The limits are what is tested here, not argon2: each sign-up hashes alike, cheaply.
    cheap = accounts.passwords.hash_password(PASSWORD)
    monkeypatch.setattr(accounts.passwords, "hash_password", lambda _password: cheap)
    settings = database.settings
    per_network = settings.registrations_per_network_per_hour
    assert per_network < settings.registrations_per_hour
    created = refused = 0
    for network in range(11):
        # Enough addresses of the network to use up its cap, one sign-up past it.
        for attempt in range(per_network + 1):
            host = attempt // settings.registrations_per_client_per_hour + 1
            address = f"198.{18 + network // 8}.{network % 8 * 32}.{host}"
            try:
                accounts.register(database, f"bot{network}x{attempt}", PASSWORD, client_id=address)
            except accounts.RegistrationRateExceeded:
                refused += 1
            else:
                created += 1
    assert created == 11 * per_network > settings.registrations_per_hour
    assert refused == 11
    patient = accounts.register(database, "real_patient", PASSWORD, client_id="203.0.113.77")
    assert patient.username == "real_patient"
    assert accounts.registration_alerts(database, admin)


def test_an_ipv6_host_is_one_client_and_its_site_one_network(registration_limited) -> None:
    db = registration_limited
    accounts.register(db, "v6a", PASSWORD, client_id="2001:db8:1:1::1")
    accounts.register(db, "v6b", PASSWORD, client_id="2001:db8:1:1:ffff::2")
    with pytest.raises(accounts.RegistrationRateExceeded):
        accounts.register(db, "v6c", PASSWORD, client_id="2001:db8:1:1:abcd::3")
    accounts.register(db, "v6d", PASSWORD, client_id="2001:db8:1:2::1")
    with pytest.raises(accounts.RegistrationRateExceeded):
        accounts.register(db, "v6e", PASSWORD, client_id="2001:db8:1:3::1")
    accounts.register(db, "v6f", PASSWORD, client_id="2001:db8:2:1::1")


def test_registration_limit_counts_only_the_last_hour(registration_limited) -> None:
    db = registration_limited
    for index in range(2):
        accounts.register(db, f"bot{index}", PASSWORD, client_id="203.0.113.9")
    with db.transaction() as session:
        for event in session.exec(select(schema.RateEvent)).all():
            event.created_at -= timedelta(minutes=61)
            session.add(event)

    accounts.register(db, "bot2", PASSWORD, client_id="203.0.113.9")


def test_admin_created_accounts_are_not_rate_limited(registration_limited) -> None:
    db = registration_limited
    admin = accounts.authenticate(db, "admin", ADMIN_PASSWORD, None)
    for index in range(5):
        accounts.register(db, f"staff{index}", PASSWORD, role="clinician", by=admin)
    assert len(_usernames(db)) == 6
