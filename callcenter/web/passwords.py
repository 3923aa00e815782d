"""Password hashing with the standard library's scrypt.

Stored form: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`` so the cost can be
raised later without invalidating existing hashes.  Verification compares in
constant time; an unknown or malformed hash never verifies.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

N, R, P = 2**14, 8, 1
DKLEN = 32
MIN_LENGTH = 8


class WeakPassword(ValueError):
    """The password does not meet the minimum rules (message says which)."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_LENGTH} characters")
    if password.strip() != password:
        raise WeakPassword("password must not start or end with spaces")


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=DKLEN,
                        maxmem=256 * 1024 * 1024)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(dk)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        salt_b, expected_b = base64.b64decode(salt), base64.b64decode(expected)
        dk = hashlib.scrypt(password.encode("utf-8"), salt=salt_b, n=int(n), r=int(r), p=int(p),
                            dklen=len(expected_b), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(dk, expected_b)


# A hash to verify against when the user does not exist, so that a missing
# user costs the same time as a wrong password (no user enumeration by timing).
_DUMMY: list[str] = []


def dummy_verify(password: str) -> bool:
    if not _DUMMY:
        _DUMMY.append(hash_password("not-a-real-password"))
    verify_password(password, _DUMMY[0])
    return False
