"""A TLS front for a private engine: tcp:// with client certificates, as a Docker
context with TLS material points at, without reconfiguring the sandbox's dockerd.

`make_certs` makes a CA, a server certificate for 127.0.0.1 and a client
certificate with the openssl command line; `tls_front` listens on a free port of
127.0.0.1, requires a client certificate signed by that CA, and joins each
connection to the engine's unix socket.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """ca.pem; server-cert.pem/server-key.pem (IP 127.0.0.1); cert.pem/key.pem (client)."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, key, ext in (
        ("server-cert", "server-key", "server.ext"),
        ("cert", "key", "client.ext"),
    ):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{key}.pem", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        signed = ["-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2"]
        _openssl("x509", "-req", "-in", f"{name}.csr", *signed, "-extfile", ext,
                 "-out", f"{name}.pem", cwd=d)  # fmt: skip


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _serve(listener: socket.socket, tls: ssl.SSLContext, engine_socket: str) -> None:
    while True:
        try:
            raw, _ = listener.accept()
        except OSError:
            return  # closed: the front is stopped
        try:
            conn = tls.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()  # no or a wrong client certificate
            continue
        engine = socket.socket(socket.AF_UNIX)
        engine.connect(engine_socket)
        threading.Thread(target=_pump, args=(conn, engine), daemon=True).start()
        threading.Thread(target=_pump, args=(engine, conn), daemon=True).start()


@contextlib.contextmanager
def tls_front(certs: Path, engine_host: str) -> Iterator[str]:
    """tcp://127.0.0.1:PORT in front of `engine_host` (unix://...), TLS both ways."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certs / "server-cert.pem", certs / "server-key.pem")
    tls.load_verify_locations(certs / "ca.pem")
    tls.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(
        target=_serve, args=(listener, tls, engine_host.removeprefix("unix://")), daemon=True
    )
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        listener.close()
