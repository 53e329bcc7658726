"""Staff accounts of the console: argon2id password hashes, login with lockout after repeated
failures, and the audit log of what staff did."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.db import Database
from store.models import AuditEntry, StaffUser, utcnow

ROLES = ("staff", "admin")
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the username is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_user(session: Session, username: str, password: str, role: str = "staff") -> StaffUser:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    username = username.strip()
    if not username or len(username) > 64:
        raise ValueError("username must be 1 to 64 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(StaffUser).where(StaffUser.username == username)) is not None:
        raise ValueError(f"staff user {username!r} already exists")
    user = StaffUser(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser | None
    error: str | None  # shown to the person logging in; never says which part was wrong
    locked: bool = False


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    max_failures: int = 5,
    lockout: dt.timedelta = dt.timedelta(minutes=15),
    now: dt.datetime | None = None,
) -> LoginResult:
    now = now or utcnow()
    user = session.scalar(select(StaffUser).where(StaffUser.username == username.strip()))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return LoginResult(None, "Wrong username or password.")
    if user.locked_until is not None and user.locked_until > now:
        # Even the right password is refused while locked: that is what stops guessing.
        return LoginResult(None, "Too many failed attempts. Try again later.", locked=True)
    if not verify_password(user.password_hash, password):
        # Increment in SQL so that parallel wrong guesses are all counted.
        session.execute(
            update(StaffUser)
            .where(StaffUser.id == user.id)
            .values(failed_logins=StaffUser.failed_logins + 1)
        )
        session.refresh(user)
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
            return LoginResult(None, "Too many failed attempts. Try again later.", locked=True)
        return LoginResult(None, "Wrong username or password.")
    user.failed_logins = 0
    user.locked_until = None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return LoginResult(user, None)


def write_audit(db: Database, username: str, action: str, target: str | None) -> None:
    """One line of the console's audit log (logins, denied pages, every staff action)."""
    with db.session() as s:
        s.add(AuditEntry(staff_username=username, action=action, target=(target or "")[:200]))
