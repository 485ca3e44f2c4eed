"""Real registries for the registry tests: Debian's docker-registry (distribution 2.8).

Each test gets registries of its own (one starts in about 0.1 s): a config file, a
storage directory and a free port on 127.0.0.1, never the system service. A
registry is started and restarted by a small script (`restart`, also what
`[registry.gc] restart` runs in the gc tests) that keeps its pid in a file; it is
stopped by that pid. Images are pushed through the real HTTP API by `Pusher`
(blobs, manifests, indexes, referrers, exactly as wanted); a real `docker push`
from a private engine is used where a push must race with a collection.

The package is installed with apt-get when missing, under a lock, without
starting its service (as scripts/sandbox-engine installs docker.io).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from bilge.registry.auth import Credentials, RegistryAuth
from tests.integration.bilge_cli import Run

REGISTRY_BIN = Path("/usr/bin/docker-registry")
INSTALL_LOCK = Path("/run/lock/bilge-registry-install.lock")
REPO_ROOT = Path(__file__).resolve().parents[2]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"

#: A fixed "now" far enough ahead that every image pushed here is older.
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


# --- the package ----------------------------------------------------------------------


def ensure_registry_package() -> None:
    """Install Debian's docker-registry if its binary is missing (root, apt-get)."""
    if REGISTRY_BIN.exists():
        return
    INSTALL_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if REGISTRY_BIN.exists():
            return
        policy = Path("/usr/sbin/policy-rc.d")
        # The package's postinst would start the system service: a temporary
        # policy-rc.d stops that (an existing one is left as it is).
        created = not policy.exists()
        if created:
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        try:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for argv in (
                ["apt-get", "-qq", "update"],
                ["apt-get", "-qq", "-y", "-o", "DPkg::Lock::Timeout=300", "install",
                 "--no-install-recommends", "docker-registry"],
            ):  # fmt: skip
                proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
        finally:
            if created:
                policy.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    """A CA and a server certificate for 127.0.0.1 that it signed."""

    ca: Path
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str, key: rsa.RSAPrivateKey, issuer: tuple[str, rsa.RSAPrivateKey] | None, ca: bool
) -> x509.Certificate:
    now = datetime.now(UTC)
    issuer_name, signer = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_tls(directory: Path) -> Tls:
    ca_key, server_key = _key(), _key()
    ca = _certificate("bilge test CA", ca_key, None, ca=True)
    server = _certificate("127.0.0.1", server_key, ("bilge test CA", ca_key), ca=False)
    tls = Tls(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    tls.ca.write_bytes(_pem(ca))
    tls.cert.write_bytes(_pem(server))
    tls.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return tls


def htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """An htpasswd file with bcrypt entries, the only kind distribution accepts."""
    lines = [
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}" for u, p in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- a token server -------------------------------------------------------------------


@dataclass
class TokenServer:
    """A Docker token server on 127.0.0.1: Basic credentials in, a signed JWT
    (RS256, with its certificate in x5c) granting the requested actions the user
    may have. Every request is recorded as (user, scopes)."""

    directory: Path
    #: user -> (password, actions the user may be granted: pull, push, delete, catalog)
    users: Mapping[str, tuple[str, frozenset[str]]]
    service: str = "bilge-test-registry"
    issuer: str = "bilge-test-issuer"
    requests: list[tuple[str | None, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = _key()
        self.cert = _certificate("bilge token issuer", self.key, None, ca=True)
        self.bundle = self.directory / "token.crt"
        self.bundle.write_bytes(_pem(self.cert))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/token"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def registry_auth(self) -> dict[str, Any]:
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.bundle),
            }
        }

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        scopes = query.get("scope", [])
        user = self._user(handler.headers.get("Authorization", ""))
        self.requests.append((user, scopes))
        if user is None:
            handler.send_response(401)
            handler.end_headers()
            return
        body = json.dumps({"token": self.issue(user, scopes)}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _user(self, header: str) -> str | None:
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        known = self.users.get(user)
        return user if known and secrets.compare_digest(known[0], password) else None

    def issue(self, user: str, scopes: list[str]) -> str:
        now = int(time.time())
        access = [a for scope in scopes if (a := self._grant(user, scope))]
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = f"{_b64url(header)}.{_b64url(claims)}".encode()
        signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (
            signing_input.decode() + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")
        )

    def _grant(self, user: str, scope: str) -> dict[str, Any] | None:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        allowed = self.users[user][1]
        if kind == "registry":
            granted = ["*"] if "catalog" in allowed else []
        else:
            granted = [a for a in actions.split(",") if a in allowed]
        return {"type": kind, "name": name, "actions": granted} if granted else None


def _b64url(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


# --- a registry -----------------------------------------------------------------------

_RESTART = """#!/bin/sh
# Restart the test registry of {dir}: stop the one its pid file names, start another.
dir={dir}
if [ -s "$dir/registry.pid" ]; then
    pid=$(cat "$dir/registry.pid")
    if kill "$pid" 2>/dev/null; then
        i=0
        while [ $i -lt 200 ] && [ -d /proc/$pid ] && ! grep -q '^State:.*Z' /proc/$pid/status; do
            sleep 0.05
            i=$((i + 1))
        done
    fi
fi
setsid {binary} serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
echo $! >"$dir/registry.pid"
"""


@dataclass
class Registry:
    """A private registry: its directory holds config.yml, storage/, the pid file,
    the log and the restart script."""

    dir: Path
    port: int
    tls: Tls | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.dir / "config.yml"

    @property
    def storage(self) -> Path:
        return self.dir / "storage"

    @property
    def restart(self) -> Path:
        return self.dir / "restart"

    @property
    def pid(self) -> int | None:
        text = (self.dir / "registry.pid").read_text().strip() if self._pidfile() else ""
        return int(text) if text else None

    def _pidfile(self) -> bool:
        return (self.dir / "registry.pid").exists()

    def log(self) -> str:
        path = self.dir / "registry.log"
        return path.read_text() if path.exists() else ""

    def start(self) -> None:
        """(Re)start it with the restart script and wait until it answers."""
        subprocess.run([str(self.restart)], check=True, timeout=30)
        self.wait()

    def wait(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/v2/", verify=False, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"registry in {self.dir} did not answer:\n{self.log()[-2000:]}")

    def stop(self) -> None:
        """Stop it by its pid (only processes these tests started)."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            return
        for _ in range(200):
            status = Path(f"/proc/{pid}/status")
            if not status.exists() or "\nState:\tZ" in status.read_text():
                return
            time.sleep(0.05)
        os.kill(pid, 9)

    def settings(self) -> dict[str, Any]:
        return yaml.safe_load(self.config.read_text())


def start_registry(
    directory: Path,
    *,
    auth: Mapping[str, Any] | None = None,
    tls: Tls | None = None,
    delete: bool = True,
    read_only: bool = False,
) -> Registry:
    """A registry of its own in `directory` (created), started. Call `stop`."""
    ensure_registry_package()
    directory.mkdir(parents=True, exist_ok=True)
    registry = Registry(directory, free_port(), tls)
    storage: dict[str, Any] = {
        "filesystem": {"rootdirectory": str(registry.storage)},
        "delete": {"enabled": delete},
    }
    if read_only:
        storage["maintenance"] = {"readonly": {"enabled": True}}
    http: dict[str, Any] = {"addr": registry.host, "secret": secrets.token_hex(16)}
    if tls is not None:
        http["tls"] = {"certificate": str(tls.cert), "key": str(tls.key)}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": storage,
        "http": http,
    }
    if auth:
        config["auth"] = dict(auth)
    registry.config.write_text("# a bilge test registry\n" + yaml.safe_dump(config))
    registry.restart.write_text(_RESTART.format(dir=directory, binary=REGISTRY_BIN))
    registry.restart.chmod(0o755)
    registry.start()
    return registry


@pytest.fixture
def registry_dir() -> Iterator[Path]:
    """A fresh directory under /tmp for the test's registries, removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="registry-test-"))
    try:
        yield directory
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(directory)], check=False)


@pytest.fixture
def registry(registry_dir: Path) -> Iterator[Registry]:
    """A registry of the test's own: plain http on 127.0.0.1, deletes enabled, no auth."""
    reg = start_registry(registry_dir / "plain")
    try:
        yield reg
    finally:
        reg.stop()


# --- pushing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pushed:
    """A manifest as pushed: its descriptor, and the blobs it references."""

    digest: str
    media_type: str
    size: int
    blobs: tuple[tuple[str, int], ...] = ()

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


class Pusher:
    """Pushes through the registry's HTTP API, as a client would."""

    def __init__(
        self, url: str, credentials: Credentials | None = None, ca: Path | None = None
    ) -> None:
        verify: Any = ssl.create_default_context(cafile=str(ca)) if ca else True
        self.auth = RegistryAuth(credentials, verify=verify)
        self.http = httpx.Client(base_url=url, auth=self.auth, verify=verify, timeout=30)
        self.bodies: dict[str, tuple[str, bytes]] = {}

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    def __enter__(self) -> Pusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def blob(self, repo: str, data: bytes) -> tuple[str, int]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = self.http.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        sep = "&" if "?" in location else "?"
        done = self.http.put(
            f"{location}{sep}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return digest, len(data)

    def manifest(self, repo: str, tag: str | None, media_type: str, doc: Mapping[str, Any]) -> str:
        """Push a manifest, tagged `tag` or (None) by its digest only."""
        body = json.dumps(doc, indent=1).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.bodies[digest] = (media_type, body)
        self._put(repo, tag or digest, media_type, body)
        return digest

    def _put(self, repo: str, reference: str, media_type: str, body: bytes) -> None:
        put = self.http.put(
            f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
        )
        assert put.status_code == 201, put.text

    def image(
        self,
        repo: str,
        tag: str | None,
        *,
        created: datetime | None = None,
        size: int = 2048,
        arch: str = "amd64",
        layers: tuple[tuple[str, int], ...] = (),
        labels: Mapping[str, str] | None = None,
        oci: bool = False,
    ) -> Pushed:
        """An image with `layers` (blobs pushed before) plus one random layer of
        `size` bytes of its own; tagged `tag` (None: pushed by digest only)."""
        own = (self.blob(repo, os.urandom(size)),) if size else ()
        all_layers = (*layers, *own)
        config: dict[str, Any] = {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": dict(labels or {})},
            "rootfs": {"type": "layers", "diff_ids": [d for d, _ in all_layers]},
        }
        if created is not None:
            config["created"] = created.isoformat().replace("+00:00", "Z")
        config_blob = self.blob(repo, json.dumps(config).encode())
        media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
        doc = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": _desc(OCI_CONFIG_TYPE if oci else DOCKER_CONFIG_TYPE, config_blob),
            "layers": [_desc(LAYER, layer) for layer in all_layers],
        }
        digest = self.manifest(repo, tag, media_type, doc)
        return Pushed(digest, media_type, len(self.bodies[digest][1]), (config_blob, *all_layers))

    def index(self, repo: str, tag: str, children: list[Pushed], *, oci: bool = True) -> Pushed:
        """A multi-arch index (OCI, or a Docker manifest list) of `children`."""
        media_type = OCI_INDEX if oci else DOCKER_LIST
        entries = [
            c.descriptor(platform={"architecture": arch, "os": "linux"})
            for c, arch in zip(children, ("amd64", "arm64", "s390x", "ppc64le"), strict=False)
        ]
        doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
        digest = self.manifest(repo, tag, media_type, doc)
        return Pushed(digest, media_type, len(self.bodies[digest][1]))

    def referrer(self, repo: str, tag: str | None, subject: Pushed) -> Pushed:
        """A signature-like artifact attached to `subject` (OCI `subject`)."""
        config = self.blob(repo, b"{}")
        payload = self.blob(repo, os.urandom(300))
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.bilge.test.signature",
            "config": _desc("application/vnd.oci.empty.v1+json", config),
            "layers": [_desc("application/vnd.bilge.test.payload", payload)],
            "subject": subject.descriptor(),
        }
        digest = self.manifest(repo, tag, OCI_MANIFEST, doc)
        return Pushed(digest, OCI_MANIFEST, len(self.bodies[digest][1]), (config, payload))

    def tag(self, repo: str, tag: str, pushed: Pushed) -> None:
        """Point `tag` at a manifest pushed before."""
        media_type, body = self.bodies[pushed.digest]
        self._put(repo, tag, media_type, body)

    def resolve(self, repo: str, tag: str) -> str | None:
        head = self.http.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
        return head.headers["docker-content-digest"] if head.status_code == 200 else None

    def exists(self, repo: str, digest: str) -> bool:
        head = self.http.head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ACCEPT})
        return head.status_code == 200

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.http.head(f"/v2/{repo}/blobs/{digest}").status_code == 200

    def tags(self, repo: str) -> list[str]:
        got = self.http.get(f"/v2/{repo}/tags/list")
        return sorted(got.json().get("tags") or []) if got.status_code == 200 else []


def _desc(media_type: str, blob: tuple[str, int]) -> dict[str, object]:
    return {"mediaType": media_type, "digest": blob[0], "size": blob[1]}


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


# --- running bilge --------------------------------------------------------------------


@dataclass
class BilgeRegistry:
    """`bilge` with a policy file, a state dir and a Docker config of the test's own.

    It runs in this process (`bilge.cli.entry.main`, output captured), since starting
    Python and importing bilge takes most of a second on a small machine; with
    `process=True` it runs as a user runs it, `python -m bilge` in a process of its own.
    """

    tmp: Path
    docker_config: dict[str, Any] = field(default_factory=dict)
    path: tuple[Path, ...] = ()

    def policy(self, text: str) -> BilgeRegistry:
        (self.tmp / "bilge.toml").write_text(text)
        return self

    def __call__(self, *args: str, process: bool = False) -> Run:
        docker = self.tmp / "docker"
        docker.mkdir(exist_ok=True)
        (docker / "config.json").write_text(json.dumps(self.docker_config))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BILGE_"))}
        env |= {"DOCKER_CONFIG": str(docker), "COLUMNS": "200", "PYTHONPATH": str(REPO_ROOT)}
        env["PATH"] = os.pathsep.join([*map(str, self.path), env.get("PATH", "")])
        argv = ["-c", str(self.tmp / "bilge.toml"), "--state-dir", str(self.tmp / "state"), *args]
        if not process:
            return _in_process(argv, env)
        proc = subprocess.run(
            [sys.executable, "-m", "bilge", *argv],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=300,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)


def _in_process(argv: list[str], env: Mapping[str, str]) -> Run:
    from bilge.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Run(code, out.getvalue(), err.getvalue())


def basic_auth_entry(host: str, user: str, password: str) -> dict[str, Any]:
    """A Docker config with what `docker login HOST` stores without a helper."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {host: {"auth": token}}}


def policy(url: str, rules: str, *, extra: str = "", gc: str = "") -> str:
    """A bilge.toml with one registry; `rules` are [[registry.rules]] tables."""
    text = f'[[registry]]\nurl = "{url}"\n{extra}\n{rules}\n'
    return text + (f"\n[registry.gc]\n{gc}\n" if gc else "")
