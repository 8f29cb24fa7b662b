"""Security: who may use the dashboard, and proof that a form was posted by its own page.

The dashboard can retry and delete every job, so it is closed by default:

- **No token configured**: only loopback clients addressing the server by a loopback host
  name are served (403 otherwise). The Host check stops DNS rebinding: a web page
  elsewhere cannot point a name at 127.0.0.1 and read the dashboard from the browser.
- **A token** (``--token`` or ``TOMQUEUE_DASHBOARD_TOKEN``): every request must carry it,
  as ``Authorization: Bearer <token>`` (scripts) or as the signed session cookie the login
  form sets (people). The cookie holds no secret: it is signed with a key derived from
  the token, so changing the token ends every session.
- **Every POST** from a browser carries a CSRF token: a random nonce lives in a
  ``SameSite=Strict`` cookie and each form holds that nonce signed; the two must match.
  A bearer request needs none (a browser never adds that header by itself).

Tokens are compared in constant time and never logged. Pure except for the randomness;
``tests/unit/test_dashboard_security.py`` covers it from tables.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer

from tomqueue.hosts import is_loopback

SESSION_COOKIE = "tomqueue_session"
CSRF_COOKIE = "tomqueue_csrf"
CSRF_FIELD = "csrf"
SESSION_MAX_AGE = 12 * 3600  # seconds a login lasts
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class Guard:
    """The dashboard's access rules for one configuration (a token or none)."""

    def __init__(self, token: str | None, trusted_hosts: frozenset[str] = frozenset()) -> None:
        if token is not None and len(token) < 16:
            raise ValueError("the dashboard token must be at least 16 characters long")
        self.token = token
        self.trusted_hosts = LOOPBACK_HOSTS | trusted_hosts
        # with a token, sessions survive restarts and end when the token changes; without
        # one, a key of this process's own is enough (loopback users log in to nothing)
        key = (
            hmac.new(token.encode(), b"tomqueue-dashboard", hashlib.sha256).digest()
            if token is not None
            else secrets.token_bytes(32)
        )
        self._sessions = URLSafeTimedSerializer(key, salt="session")
        self._csrf = Signer(key, salt="csrf")

    @property
    def needs_login(self) -> bool:
        return self.token is not None

    # -- who is asking ---------------------------------------------------------------------

    def bearer_ok(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token."""
        if self.token is None or not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def token_matches(self, candidate: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            candidate.encode(), self.token.encode()
        )

    def new_session(self) -> str:
        return self._sessions.dumps({"ok": True})

    def session_ok(self, cookie: str | None) -> bool:
        if self.token is None or not cookie:
            return False
        try:
            self._sessions.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:  # includes an expired signature
            return False
        return True

    def local_request_ok(self, client_host: str | None, host_header: str | None) -> bool:
        """Without a token: a loopback client that named a trusted host."""
        return is_loopback(client_host) and host_name(host_header) in self.trusted_hosts

    # -- forms -----------------------------------------------------------------------------

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def form_token(self, nonce: str) -> str:
        """What a page's forms carry for the browser holding ``nonce`` in its cookie."""
        return self._csrf.sign(nonce.encode()).decode()

    def form_ok(self, nonce: str | None, submitted: str | None) -> bool:
        if not nonce or not submitted:
            return False
        try:
            signed = self._csrf.unsign(submitted.encode())
        except BadSignature:
            return False
        return hmac.compare_digest(signed, nonce.encode())


def host_name(host_header: str | None) -> str:
    """The name in a Host header, without its port (``[::1]:8089`` -> ``[::1]``)."""
    if not host_header:
        return ""
    value = host_header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end != -1 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def safe_next(path: str | None, default: str) -> str:
    """Where to go after logging in: a path on this site only (no ``//evil`` or URLs)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path
