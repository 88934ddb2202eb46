"""A fake Globus Auth for the ALCF tests, faithful to UPSTREAMS.md §1.

Routes (form-encoded POSTs, JSON answers):

``GET  /v2/oauth2/authorize``        checks the parameters a native-app PKCE login sends and answers 200 with
                                     the code in the page (a browser would show it); tests call ``approve(url)``
                                     instead, which applies the same checks and returns the code.
``POST /v2/oauth2/token``            ``authorization_code`` (client_id, code, code_verifier, redirect_uri; the
                                     S256 of the verifier must equal the challenge of the authorize URL) and
                                     ``refresh_token`` (client_id, refresh_token). Errors are
                                     ``{"error":"invalid_grant"}`` with ``invalid_grant_status`` (401 like the SDK
                                     fixtures, or 400 like RFC 6749).
``POST /v2/oauth2/token/revoke``     token, client_id → ``200 {"active": false}``.

Token responses carry ``other_tokens`` always (``[]`` in refreshes). A login puts an ``auth.globus.org``
(openid) token at the top level and the gateway's token in ``other_tokens``, as globus-sdk 4 logins do; a
refresh answers with the gateway's token at the top level. Refresh tokens are not rotated (the same one comes
back) unless ``omit_refresh_token_on_refresh`` is set, in which case none comes back.

Knobs: ``expires_in`` (seconds), ``refuse_refresh`` (every refresh → invalid_grant), ``fail_refresh_with``
(an HTTP status for refreshes, e.g. 503), ``refresh_delay`` (seconds a refresh takes).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from fakes import ApiError, FakeUpstream, Reply

CLIENT_ID = "58fdd3bc-e1c3-4ce5-80ea-8d6b87cfb944"
RESOURCE_SERVER = "681c10cc-f684-4540-bcd7-0b4df3bc26ef"
SCOPE = f"https://auth.globus.org/scopes/{RESOURCE_SERVER}/action_all"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class IssuedToken:
    access_token: str
    refresh_token: str | None
    resource_server: str
    scope: str
    expires_at: float
    revoked: bool = False


class GlobusError(ApiError):
    """An OAuth error answer: ``{"error": code, "error_description": ...}``."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(status, description, code=code)


class FakeGlobus(FakeUpstream):
    def __init__(self, *, client_id: str = CLIENT_ID, resource_server: str = RESOURCE_SERVER, scope: str = SCOPE,
                 expires_in: int = 172800):
        super().__init__()
        self.client_id, self.resource_server, self.scope = client_id, resource_server, scope
        self.expires_in = expires_in
        self.invalid_grant_status = 401
        self.refuse_refresh = False
        self.fail_refresh_with: int | None = None
        self.refresh_delay = 0.0
        self.omit_refresh_token_on_refresh = False
        self.lock = threading.Lock()
        self.pending_codes: dict[str, dict] = {}  # code -> {challenge, redirect_uri, scope}
        self.tokens: dict[str, IssuedToken] = {}  # access token -> record
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> resource server
        self.refresh_count = 0
        self.revoked: list[str] = []

    @property
    def redirect_uri(self) -> str:
        return f"{self.url}/v2/web/auth-code"

    # the user's side -----------------------------------------------------------
    def approve(self, authorize_url: str) -> str:
        """What the user does in the browser: check the authorize URL, consent, and get the code to paste."""
        parts = urlsplit(authorize_url)
        assert f"{parts.scheme}://{parts.netloc}" == self.url and parts.path == "/v2/oauth2/authorize", authorize_url
        query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
        self._check_authorize(query)
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.pending_codes[code] = {"challenge": query["code_challenge"], "redirect_uri": query["redirect_uri"],
                                        "scope": query["scope"]}
        return code

    def _check_authorize(self, query: dict) -> None:
        expected = {"client_id": self.client_id, "redirect_uri": self.redirect_uri, "response_type": "code",
                    "code_challenge_method": "S256", "access_type": "offline"}
        for key, value in expected.items():
            assert query.get(key) == value, f"authorize: {key}={query.get(key)!r}, expected {value!r}"
        assert self.scope in query.get("scope", "").split(), f"authorize: scope {query.get('scope')!r}"
        assert len(query.get("code_challenge", "")) == 43, "authorize: code_challenge must be base64url(sha256)"
        assert query.get("state"), "authorize: state missing"

    def is_active(self, access_token: str) -> str | None:
        """For the fake gateway's introspection: None when active, else why not."""
        with self.lock:
            record = self.tokens.get(access_token)
        if record is None or record.revoked:
            return "inactive"
        if record.resource_server != self.resource_server:
            return "inactive"
        if time.time() >= record.expires_at:
            return "expired"
        return None

    def revoke_all_access_tokens(self) -> None:
        """Make every issued access token inactive (as if each had been revoked)."""
        with self.lock:
            for record in self.tokens.values():
                record.revoked = True

    # HTTP ------------------------------------------------------------------------
    def error_body(self, error: ApiError) -> dict:
        return {"error": error.code or "invalid_request", "error_description": error.message}

    def route(self, reply: Reply, serial: int) -> None:
        exchange = reply.exchange
        if exchange.method == "GET" and exchange.path == "/v2/oauth2/authorize":
            query = {k: v[0] for k, v in parse_qs(exchange.query).items()}
            try:
                self._check_authorize(query)
            except AssertionError as problem:
                raise GlobusError(400, "invalid_request", str(problem))
            reply.json(200, {"page": "log in, then copy the code shown"})
            return
        if exchange.method != "POST":
            raise GlobusError(405, "invalid_request", "method not allowed")
        content_type = exchange.headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            raise GlobusError(400, "invalid_request", f"expected a form body, got {content_type!r}")
        form = {k: v[0] for k, v in parse_qs(exchange.raw_body.decode(), strict_parsing=True).items()}
        exchange.body = form
        if exchange.path == "/v2/oauth2/token":
            self._token(reply, form)
        elif exchange.path == "/v2/oauth2/token/revoke":
            self._revoke(reply, form)
        else:
            raise GlobusError(404, "not_found", exchange.path)

    def _issue(self, resource_server: str, scope: str, refresh_token: str | None) -> dict:
        access = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access] = IssuedToken(access, refresh_token, resource_server, scope,
                                              time.time() + self.expires_in)
        token = {"access_token": access, "scope": scope, "resource_server": resource_server,
                 "expires_in": self.expires_in, "token_type": "Bearer"}
        if refresh_token:
            token["refresh_token"] = refresh_token
        return token

    def _token(self, reply: Reply, form: dict) -> None:
        if form.get("client_id") != self.client_id:
            raise GlobusError(401, "invalid_client", "unknown client")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self.lock:
                pending = self.pending_codes.pop(form.get("code", ""), None)
            if pending is None:
                raise GlobusError(self.invalid_grant_status, "invalid_grant", "unknown or used code")
            if form.get("redirect_uri") != pending["redirect_uri"]:
                raise GlobusError(self.invalid_grant_status, "invalid_grant", "redirect_uri mismatch")
            verifier = form.get("code_verifier", "")
            if not 43 <= len(verifier) <= 128 or s256(verifier) != pending["challenge"]:
                raise GlobusError(self.invalid_grant_status, "invalid_grant", "PKCE verification failed")
            refresh = secrets.token_urlsafe(32)
            with self.lock:
                self.refresh_tokens[refresh] = self.resource_server
            gateway = self._issue(self.resource_server, pending["scope"], refresh)
            top = self._issue("auth.globus.org", "openid", secrets.token_urlsafe(32))
            reply.json(200, {**top, "id_token": "fake.id.token", "state": "_default", "other_tokens": [gateway]})
        elif grant == "refresh_token":
            if self.refresh_delay:
                time.sleep(self.refresh_delay)
            if self.fail_refresh_with:
                raise GlobusError(self.fail_refresh_with, "server_error", "scripted failure")
            refresh = form.get("refresh_token", "")
            with self.lock:
                server = self.refresh_tokens.get(refresh)
            if self.refuse_refresh or server is None:
                raise GlobusError(self.invalid_grant_status, "invalid_grant", "refresh token is not valid")
            with self.lock:
                self.refresh_count += 1
            token = self._issue(server, self.scope, None if self.omit_refresh_token_on_refresh else refresh)
            reply.json(200, {**token, "other_tokens": []})
        else:
            raise GlobusError(400, "unsupported_grant_type", f"grant_type {grant!r}")

    def _revoke(self, reply: Reply, form: dict) -> None:
        token = form.get("token", "")
        with self.lock:
            self.revoked.append(token)
            if token in self.tokens:
                self.tokens[token].revoked = True
            self.refresh_tokens.pop(token, None)
        reply.json(200, {"active": False})
