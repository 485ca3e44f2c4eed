"""Registry authentication: the Docker config's credentials, Basic and Bearer.

Credentials are never taken from the command line. They come from the Docker
client's config ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), as
`docker login` left them: a credential helper for the host (`credHelpers`),
else the default store (`credsStore`), else the `auths` entry.

`RegistryAuth` answers the registry's challenges (the WWW-Authenticate header
of a 401): Basic sends the credentials; Bearer asks the token server named in
the challenge (realm, service, scope) for a token, with the credentials if
there are any (anonymous otherwise). Tokens are kept per scope and sent up
front on the next request of that scope; a 401 naming a new scope (or saying
a token expired) gets a new token, once per request.
"""

from __future__ import annotations

import base64
import os
import re
import ssl
import subprocess
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bilge.errors import ConfigError
from bilge.registry.deadline import REQUEST_TIMEOUT_SECONDS, Deadlines, TooLarge, read_limited
from bilge.registry.errors import RegistryDenied, RegistryError, RegistryUnreachable
from bilge.registry.policy import is_loopback
from bilge.safejson import loads_json

HELPER_TIMEOUT = 30
_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_REPO_PATH_RE = re.compile(r"/v2/(.+?)/(?:manifests|blobs|tags)/")
_ACTIONS = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}
#: A token answer is a few KB of JSON (a JWT and its expiry).
MAX_TOKEN_ANSWER = 1 << 20


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = ""

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "basic" or "bearer"
    params: Mapping[str, str]


# -- where credentials come from --------------------------------------------------------


def docker_config_path(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def find_credentials(host: str, env: Mapping[str, str] = os.environ) -> Credentials | None:
    """The credentials `docker login HOST` stored, or None (then bilge is anonymous)."""
    path = docker_config_path(env)
    doc = _read_docker_config(path)
    helper = _mapping(doc.get("credHelpers"), path).get(host) or doc.get("credsStore")
    if isinstance(helper, str) and helper:
        found = _from_helper(helper, host, env)
        if found is not None:
            return found
    return _from_auths(_mapping(doc.get("auths"), path), host, path)


def _read_docker_config(path: Path) -> dict[str, object]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"docker config {path}: {exc.strerror or exc}") from exc
    try:
        doc = loads_json(text)
    except ValueError as exc:
        raise ConfigError(f"docker config {path}: not JSON ({exc})") from exc
    return _mapping(doc, path)


def _mapping(value: object, path: Path) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"docker config {path}: expected an object, got {type(value).__name__}")
    return value


def _same_host(key: str, host: str) -> bool:
    # `docker login` writes "host:port", older clients "https://host:port/v1/".
    netloc = urlsplit(key).netloc if "://" in key else key.split("/", maxsplit=1)[0]
    return netloc == host


def _from_auths(auths: Mapping[str, object], host: str, path: Path) -> Credentials | None:
    entry = next((v for k, v in auths.items() if _same_host(k, host)), None)
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError as exc:
            raise ConfigError(f"docker config {path}: auths.{host}.auth is not base64") from exc
        return Credentials(user, password)
    if isinstance(entry.get("username"), str):
        return Credentials(entry["username"], str(entry.get("password") or ""))
    return None


def _from_helper(helper: str, host: str, env: Mapping[str, str]) -> Credentials | None:
    program = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [program, "get"],
            input=host,
            capture_output=True,
            text=True,
            timeout=HELPER_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except FileNotFoundError as exc:
        raise RegistryError(f"credential helper {program} (docker config) is not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryError(f"credential helper {program} did not answer within 30s") from exc
    said = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        if "credentials not found" in said.lower():
            return None
        raise RegistryError(f"credential helper {program} failed: {said[:200]}")
    return _helper_answer(program, proc.stdout)


def _helper_answer(program: str, text: str) -> Credentials:
    try:
        doc = loads_json(text)
        user, secret = doc["Username"], doc["Secret"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"credential helper {program} gave an answer that is not JSON") from exc
    if not isinstance(user, str) or not isinstance(secret, str):
        raise RegistryError(f"credential helper {program}: Username and Secret must be strings")
    if user == "<token>":
        raise RegistryError(
            f"credential helper {program} holds an identity token, which bilge does not "
            "support: docker login with a user name and password or access token"
        )
    return Credentials(user, secret)


# -- challenges and tokens --------------------------------------------------------------


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="...",service="...",scope="..."` -> Challenge; None if unusable."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {k.lower(): quoted or bare for k, quoted, bare in _PARAM_RE.findall(rest)}
    return Challenge(scheme.lower(), params)


def scope_of(request: httpx.Request) -> str:
    """The token scope a request needs, as the registry will name it."""
    path = request.url.path
    if path.startswith("/v2/_catalog"):
        return "registry:catalog:*"
    match = _REPO_PATH_RE.match(path)
    if match is None:
        return ""
    return f"repository:{match.group(1)}:{_ACTIONS.get(request.method, 'pull,push')}"


class RegistryAuth(httpx.Auth):
    """Answers Basic and Bearer challenges; safe to share between threads."""

    def __init__(
        self,
        credentials: Credentials | None,
        *,
        verify: ssl.SSLContext | bool = True,
        allow_http: bool = False,
        transport: httpx.BaseTransport | None = None,
        deadlines: Deadlines | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        """`deadlines` are the registry client's: a token round trip made for one
        of its requests counts against that request's deadline too."""
        self.credentials = credentials
        self._verify = verify
        self._allow_http = allow_http
        self._transport = transport
        self._deadlines = deadlines or Deadlines()
        self._timeout = timeout
        self._lock = threading.Lock()
        self._basic = False
        self._tokens: dict[str, str] = {}
        self._client: httpx.Client | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = scope_of(request)
        self._authorize(request, key)
        response = yield request
        if response.status_code != 401:
            return
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        if challenge is None or not self._answer(challenge, key):
            return
        self._authorize(request, key)
        yield request

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _authorize(self, request: httpx.Request, key: str) -> None:
        with self._lock:
            token = self._tokens.get(key)
            if token is not None:
                request.headers["Authorization"] = f"Bearer {token}"
            elif self._basic and self.credentials is not None:
                request.headers["Authorization"] = self.credentials.basic()

    def _answer(self, challenge: Challenge, key: str) -> bool:
        """Prepare a retry; False when retrying cannot help."""
        if challenge.scheme == "basic":
            with self._lock:
                if self.credentials is None or self._basic:
                    return False  # no credentials, or they were refused
                self._basic = True
            return True
        if challenge.scheme == "bearer":
            token = self._fetch_token(challenge)
            with self._lock:
                self._tokens[key] = token
            return True
        return False

    def _fetch_token(self, challenge: Challenge) -> str:
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(f"registry named an unusable token server {realm!r}")
        if parts.scheme == "http" and not (self._allow_http or is_loopback(parts.hostname)):
            raise RegistryError(f"refusing to ask the plain-http token server {realm} for a token")
        params: list[tuple[str, str | int | float | bool | None]] = [
            (k, challenge.params[k]) for k in ("service",) if k in challenge.params
        ]
        params += [("scope", s) for s in challenge.params.get("scope", "").split() if s]
        headers = {"Authorization": self.credentials.basic()} if self.credentials else {}
        client = self._token_client()
        try:
            with self._deadlines.within(self._timeout):
                request = client.build_request("GET", realm, params=params, headers=headers)
                response = client.send(request, stream=True)
                try:
                    body = read_limited(response, MAX_TOKEN_ANSWER, self._deadlines)
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            raise RegistryUnreachable(
                f"token server {realm} did not answer within {self._timeout:g}s"
            ) from exc
        except TooLarge as exc:
            raise RegistryError(f"token server {realm}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise RegistryUnreachable(f"token server {realm}: {exc}") from exc
        return _token_from(response.status_code, body, realm, self.credentials is not None)

    def _token_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    verify=self._verify, transport=self._transport, timeout=self._timeout
                )
            return self._client


def _token_from(status: int, body: bytes, realm: str, with_credentials: bool) -> str:
    if status in (401, 403):
        who = "the credentials from the docker config" if with_credentials else "anonymous access"
        raise RegistryDenied(
            f"token server {realm} refused {who} ({status}); run `docker login` for this registry"
        )
    if status != 200:
        raise RegistryError(f"token server {realm} answered {status}")
    try:
        doc = loads_json(body)
    except ValueError as exc:
        raise RegistryError(f"token server {realm} answered with something not JSON") from exc
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"token server {realm} answered without a token")
    return token
