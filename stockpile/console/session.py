"""The console's session: a sealed cookie, its CSRF secret, and the idempotency key of a form.

The session cookie carries the token the user signed in with, its expiry and a CSRF secret,
sealed with AES-GCM under a key derived from ``STOCKPILE_CONSOLE_SECRET`` (so no replica needs to
remember sessions, and nobody can read or forge one). Every request authenticates the token again
through the API's authenticators (cached), so a revoked token or a disabled principal ends every
session of it. The cookie is ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the request came
over https, and expires after ``STOCKPILE_CONSOLE_SESSION_MINUTES``.

Every form carries the session's CSRF secret (``_csrf``), compared in constant time; the sign-in
form, made before there is a session, carries a double-submit value also set as a cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from litestar import Request, Response

COOKIE = "stockpile_console"
SIGN_IN_COOKIE = "stockpile_console_sign_in"
PATH = "/console"
_AAD = b"stockpile console session v1"


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: float
    csrf: str


class Sealer:
    """Seals and opens session cookies with one key per service (see the module docstring)."""

    def __init__(self, secret: str, minutes: int) -> None:
        material = secret.encode() if secret else secrets.token_bytes(32)
        self._aead = AESGCM(hashlib.sha256(b"stockpile-console:" + material).digest())
        self.seconds = max(minutes, 1) * 60

    def new(self, token: str) -> Session:
        return Session(token, time.time() + self.seconds, secrets.token_urlsafe(24))

    def seal(self, session: Session) -> str:
        nonce = secrets.token_bytes(12)
        plain = json.dumps({"t": session.token, "e": session.expires_at, "c": session.csrf}).encode()
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plain, _AAD)).decode().rstrip("=")

    def open(self, value: str | None) -> Session | None:
        """The session a cookie holds; None when it is missing, tampered with or expired."""
        if not value or len(value) > 4096:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            fields = json.loads(self._aead.decrypt(raw[:12], raw[12:], _AAD))
            session = Session(str(fields["t"]), float(fields["e"]), str(fields["c"]))
        except (ValueError, KeyError, TypeError, InvalidTag):
            return None
        return session if session.expires_at > time.time() else None


def secure(request: Request) -> bool:
    """Whether the cookie must be ``Secure``: the request came over https (uvicorn reads
    ``X-Forwarded-Proto`` from the proxies it trusts)."""
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, sealer: Sealer, session: Session) -> None:
    response.set_cookie(COOKIE, sealer.seal(session), path=PATH, max_age=int(session.expires_at - time.time()),
                        httponly=True, samesite="strict", secure=secure(request))


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=PATH)


def same(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def form_key() -> str:
    """The idempotency key a rendered form carries: submitting that form twice applies it once."""
    return "console-" + secrets.token_urlsafe(18)


def fingerprint(path: str, form: dict[str, str]) -> bytes:
    """What a form asks, for its idempotency key (the CSRF value and the key itself aside)."""
    asked = {k: v for k, v in form.items() if k not in ("_csrf", "_key")}
    return hashlib.sha256(f"POST {path}\n".encode() + json.dumps(asked, sort_keys=True).encode()).digest()
