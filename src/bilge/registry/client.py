"""The one module that talks HTTP to a registry (Registry HTTP API v2, httpx).

Every answer is checked; every failure becomes one line naming the registry
and what was being done:

    401  RegistryDenied     "not authorized to delete team/app@sha256:…: ..."
    403  RegistryDenied     names the permission the credentials lack
    404  ManifestGone       (or None / False where "gone" is an answer)
    405  RegistryReadOnly   "deletes disabled or registry read-only"
    other RegistryError     with the registry's own error message

TLS is verified (with the registry's `ca_bundle` when set); plain http is
allowed by the configuration only for loopback or when asked (policy.py).
The client is safe to share between threads (collect reads in parallel).

Every request has a deadline for its whole answer, token round trip included
(deadline.py), and a size limit; past either, one line names the registry and
the request (docs/architecture.md, safety rule 8).
"""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import httpx

from bilge import __version__
from bilge.errors import ConfigError
from bilge.registry.auth import RegistryAuth, find_credentials
from bilge.registry.deadline import REQUEST_TIMEOUT_SECONDS, Deadlines, TooLarge, read_limited
from bilge.registry.deadline import transport as deadline_transport
from bilge.registry.errors import (
    ManifestGone,
    RegistryDenied,
    RegistryError,
    RegistryReadOnly,
    RegistryUnreachable,
)
from bilge.registry.manifests import parse_manifest
from bilge.registry.model import DIGEST_RE, DOCKER_MANIFEST, MANIFEST_TYPES, Manifest
from bilge.registry.policy import RegistryConfig
from bilge.safejson import loads_json

PAGE_SIZE = 100
#: A registry that ignores `last` but keeps sending a Link would loop for ever.
MAX_PAGES = 100_000
#: Image configs are small; a "config" this big is not one.
MAX_CONFIG_BYTES = 4 << 20
#: distribution refuses to store a manifest above 4 MiB, so no answer about
#: one (or an error body) is larger.
MAX_MANIFEST_BYTES = 4 << 20
#: A catalog or tag page: a registry that ignores `n` sends every name at once,
#: some 100 bytes each, so this holds half a million repositories.
MAX_LIST_BYTES = 64 << 20
ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES)


@dataclass(frozen=True)
class Resolved:
    digest: str
    media_type: str


class RegistryClient:
    """A registry's API v2, authenticated from the Docker config."""

    def __init__(
        self,
        config: RegistryConfig,
        *,
        env: Mapping[str, str] = os.environ,
        transport: httpx.BaseTransport | None = None,
        page_size: int = PAGE_SIZE,
        timeout: float | timedelta = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        """`timeout` bounds the whole answer of every request, from connect to
        the last byte of the body, token round trip included."""
        self.config = config
        self.label = config.label
        self.page_size = page_size
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        if seconds <= 0:
            raise ValueError(f"the registry request timeout must be positive, not {timeout}")
        self.timeout = seconds
        self.deadlines = Deadlines()
        verify = _tls(config)
        transport = transport or deadline_transport(verify, self.deadlines)
        credentials = find_credentials(config.host, env)
        self.has_credentials = credentials is not None
        self.auth = RegistryAuth(
            credentials,
            verify=verify,
            allow_http=config.allow_http,
            transport=transport,
            deadlines=self.deadlines,
            timeout=seconds,
        )
        self.http = httpx.Client(
            base_url=config.url,
            auth=self.auth,
            verify=verify,
            transport=transport,
            # Per operation; the deadline (deadline.py) bounds the whole answer.
            timeout=httpx.Timeout(seconds),
            headers={"User-Agent": f"bilge/{__version__}"},
        )

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the registry answers /v2/ and accepts us."""
        response = self._send("GET", "/v2/", "read /v2/")
        if response.status_code == 404:
            raise RegistryError(f"{self.config.url} is not a registry (no /v2/ API)")
        self._check(response, "read /v2/", "pull")

    def answers(self) -> bool:
        """Whether anything answers HTTP at the registry's address (after a restart)."""
        try:
            with self.deadlines.within(self.timeout):
                self.http.request("GET", "/v2/", auth=None)
        except httpx.HTTPError:
            return False
        return True

    def repositories(self) -> list[str]:
        """Every repository in the catalog."""
        return self._paginate("/v2/_catalog", "repositories", "list the catalog", "catalog")

    def tags(self, repository: str) -> list[str]:
        """Every tag of `repository` ([] when it has none, or vanished)."""
        what = f"list the tags of {repository}"
        return self._paginate(f"/v2/{repository}/tags/list", "tags", what, "pull")

    def resolve(self, repository: str, reference: str) -> Resolved | None:
        """The digest a tag points at now (HEAD, every manifest type accepted, so
        a multi-arch tag resolves to its index); None when the tag is gone."""
        what = f"resolve {repository}:{reference}"
        path = f"/v2/{repository}/manifests/{reference}"
        response = self._send("HEAD", path, what, headers={"Accept": ACCEPT_MANIFESTS})
        if response.status_code == 404:
            return None
        self._check(response, what, "pull")
        digest = response.headers.get("docker-content-digest", "")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if not digest:  # not every registry sends it on HEAD: hash the manifest
            got = self._send("GET", path, what, headers={"Accept": ACCEPT_MANIFESTS})
            self._check(got, what, "pull")
            digest = "sha256:" + hashlib.sha256(got.content).hexdigest()
        if not DIGEST_RE.fullmatch(digest):
            raise RegistryError(f"{self.label}: {what}: {digest!r} is not a sha256 digest")
        return Resolved(digest, media_type)

    def manifest(self, repository: str, digest: str) -> Manifest:
        """The manifest `digest` of `repository`, checked against its digest."""
        where = f"{self.label}: {repository}@{digest}"
        path = f"/v2/{repository}/manifests/{digest}"
        headers = {"Accept": ACCEPT_MANIFESTS}
        response = self._send("GET", path, f"read {repository}@{digest}", headers=headers)
        self._check(response, f"read {repository}@{digest}", "pull")
        _verify(where, digest, response.content)
        return parse_manifest(
            where, digest, response.headers.get("content-type", ""), response.content
        )

    def blob(self, repository: str, digest: str, limit: int = MAX_CONFIG_BYTES) -> bytes:
        """A small blob (an image config), checked against its digest."""
        what = f"read blob {repository}@{digest}"
        path = f"/v2/{repository}/blobs/{digest}"
        with self.deadlines.within(self.timeout), self._stream("GET", path, what) as response:
            try:
                body = read_limited(response, limit, self.deadlines)
            except TooLarge:
                raise RegistryError(f"{self.label}: {what}: larger than {limit} bytes") from None
            except httpx.TimeoutException as exc:
                raise self._late("GET", path) from exc
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, what) from exc
            self._check(_whole(response, body), what, "pull")
        _verify(f"{self.label}: {repository}@{digest}", digest, body)
        return body

    # -- writing ------------------------------------------------------------------------

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """DELETE the manifest (and with it every tag pointing at it); False if
        it was already gone."""
        what = f"delete {repository}@{digest}"
        response = self._send("DELETE", f"/v2/{repository}/manifests/{digest}", what)
        if response.status_code == 404:
            return False
        self._check(response, what, "delete", ok=(200, 202))
        return True

    def accepts_pushes(self, repository: str) -> bool:
        """Whether the registry would take a push now, asked without writing
        anything: an invalid manifest is refused with 400 by a writable registry
        and with 405 by a read-only one."""
        what = f"check whether {repository} accepts pushes"
        response = self._send(
            "PUT",
            f"/v2/{repository}/manifests/bilge-read-only-probe",
            what,
            headers={"Content-Type": DOCKER_MANIFEST},
            content=b"{}",
        )
        if response.status_code in (401, 403):
            self._check(response, what, "push")
        # Anything but 405 may mean writable, and then the collection must not run.
        return response.status_code != 405

    # -- plumbing -----------------------------------------------------------------------

    def _paginate(self, path: str, key: str, what: str, need: str) -> list[str]:
        # Follows Link rel="next"; a registry that ignores n sends everything at
        # once, and one that ignores `last` is caught by the repeated page.
        url: str | None = f"{path}?n={self.page_size}"
        found: list[str] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            response = self._send("GET", url, what, limit=MAX_LIST_BYTES)
            if response.status_code == 404 and key == "tags":
                return found  # the repository has no tags any more
            self._check(response, what, need)
            page = self._names(response, key, what)
            fresh = [n for n in page if n not in seen]
            found += fresh
            seen.update(fresh)
            url = self._next_link(response, what) if fresh else None
        raise RegistryError(f"{self.label}: {what}: more than {MAX_PAGES} pages")

    def _names(self, response: httpx.Response, key: str, what: str) -> list[str]:
        try:
            doc = loads_json(response.content)
        except ValueError as exc:
            raise RegistryError(f"{self.label}: {what}: answer is not JSON") from exc
        names = doc.get(key) if isinstance(doc, dict) else None
        if names is None and isinstance(doc, dict):
            return []  # distribution says "tags": null for a repository without tags
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RegistryError(f"{self.label}: {what}: {key} is not a list of names")
        return names

    def _next_link(self, response: httpx.Response, what: str) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        target = urlsplit(str(response.url.join(link)))
        if (target.scheme, target.netloc) != (response.url.scheme, response.url.netloc.decode()):
            raise RegistryError(f"{self.label}: {what}: next page on another host ({link})")
        return f"{target.path}?{target.query}" if target.query else target.path

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        limit: int = MAX_MANIFEST_BYTES,
    ) -> httpx.Response:
        """One request, its answer read whole by the deadline and within `limit`."""
        request = self.http.build_request(method, url, headers=headers, content=content)
        try:
            with self.deadlines.within(self.timeout):
                response = self.http.send(request, stream=True)
                try:
                    body = read_limited(response, limit, self.deadlines)
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            raise self._late(method, url) from exc
        except TooLarge as exc:
            raise RegistryError(f"registry {self.label}: cannot {what}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, what) from exc
        return _whole(response, body)

    def _late(self, method: str, url: str) -> RegistryUnreachable:
        path = url.split("?", 1)[0]
        return RegistryUnreachable(
            f"registry {self.config.url} did not answer within {self.timeout:g}s ({method} {path})"
        )

    def _stream(self, method: str, url: str, what: str) -> _Stream:
        return _Stream(self, method, url, what)

    def _transport_error(self, exc: httpx.HTTPError, what: str) -> RegistryError:
        cause = exc.__context__ or exc
        if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY" in str(exc):
            hint = "set ca_bundle for this registry" if not self.config.ca_bundle else "wrong CA?"
            return RegistryUnreachable(
                f"registry {self.config.url}: TLS certificate not verified ({hint}): {exc}"
            )
        return RegistryUnreachable(f"registry {self.config.url}: cannot {what}: {exc}")

    def _check(
        self, response: httpx.Response, what: str, need: str, ok: tuple[int, ...] = (200,)
    ) -> None:
        status = response.status_code
        if status in ok:
            return
        said = _registry_says(response)
        if status == 401:
            how = (
                f"the credentials from the docker config lack the '{need}' permission"
                if self.has_credentials
                else f"log in with `docker login {self.config.host}`"
            )
            raise RegistryDenied(
                f"registry {self.label}: not authorized to {what} (401{said}): {how}"
            )
        if status == 403:
            raise RegistryDenied(
                f"registry {self.label} denied {what} (403{said}): "
                f"the credentials lack the '{need}' permission"
            )
        if status == 404:
            raise ManifestGone(f"registry {self.label}: cannot {what}: not found")
        if status == 405:
            raise RegistryReadOnly(
                f"registry {self.label} refused to {what} (405): "
                "deletes disabled or registry read-only"
            )
        raise RegistryError(f"registry {self.label}: cannot {what} ({status}{said})")


class _Stream:
    """A streamed request whose transport errors become RegistryErrors."""

    def __init__(self, client: RegistryClient, method: str, url: str, what: str) -> None:
        self._client, self._what = client, what
        # Blobs may be served from elsewhere (object storage): follow redirects;
        # httpx drops the Authorization header when the host changes.
        self._cm = client.http.stream(method, url, follow_redirects=True)

    def __enter__(self) -> httpx.Response:
        try:
            return self._cm.__enter__()
        except httpx.HTTPError as exc:
            raise self._client._transport_error(exc, self._what) from exc

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(None, None, None)


def _tls(config: RegistryConfig) -> ssl.SSLContext | bool:
    if config.ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=config.ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"registry {config.label}: ca_bundle {config.ca_bundle}: {exc}") from exc


def _whole(response: httpx.Response, body: bytes) -> httpx.Response:
    """A streamed answer with the body read from it (decoded already, so handed
    on without its encoding)."""
    skip = ("content-encoding", "transfer-encoding", "content-length")
    kept = [(k, v) for k, v in response.headers.multi_items() if k not in skip]
    return httpx.Response(
        response.status_code, headers=kept, content=body, request=response.request
    )


def _verify(where: str, digest: str, body: bytes) -> None:
    actual = "sha256:" + hashlib.sha256(body).hexdigest()
    if actual != digest:
        raise RegistryError(f"{where}: content does not match its digest (got {actual})")


def _registry_says(response: httpx.Response) -> str:
    """`: CODE message` from the registry's error body, or ""."""
    try:
        errors = loads_json(response.read() or b"{}").get("errors")
        first = errors[0]
        return f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        return ""
