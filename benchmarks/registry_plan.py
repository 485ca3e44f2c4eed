"""`bilge registry plan` on a registry of 50 repositories x 200 tags: requests and time.

The registry is Debian's docker-registry (distribution 2.8.2) on 127.0.0.1 with its
access log on, so that every request bilge makes is counted by the registry itself.
It is built by pushing manifests that share blobs (10 images per repository, each
tagged 20 times), not 10,000 real images. The plan runs twice: from the API alone,
and with the storage readable (`[registry.gc] config`), where manifests and configs
are read from disk and only the catalog, the tag lists and one HEAD per tag are asked.

The minimum from the API alone: the catalog, one tag list per repository, one HEAD per
tag (the Registry API has no call that resolves many tags), one GET per distinct
manifest and one per distinct config: about 1.02 requests per tag here. regclient's
`regctl` is not installable here (its npm package downloads a binary), so bilge is
compared with that minimum.

    python -m benchmarks.registry_plan [--repos 50] [--tags 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from bilge.registry.commands import make_plan
from bilge.registry.policy import validate_registries

REGISTRY = "/usr/bin/docker-registry"
RESULTS = Path(__file__).parent / "results" / "registry_plan.json"
IMAGES_PER_REPO = 10
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def start(directory: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = directory / "config.yml"
    settings = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "storage")},
                    "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }  # fmt: skip
    config.write_text(yaml.safe_dump(settings))
    log = (directory / "registry.log").open("wb")
    proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/v2/", timeout=1)
            return proc, url, config
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the registry did not start")


def _blob(http: httpx.Client, repo: str, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = http.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    sep = "&" if "?" in location else "?"
    http.put(f"{location}{sep}digest={digest}", content=data).raise_for_status()
    return {"digest": digest, "size": len(data)}


def fill_repository(url: str, repo: str, tags: int) -> None:
    """IMAGES_PER_REPO images sharing one layer, each tagged tags / IMAGES_PER_REPO times."""
    with httpx.Client(base_url=url, timeout=60) as http:
        layer = _blob(http, repo, os.urandom(1024))
        bodies = []
        for i in range(IMAGES_PER_REPO):
            config = {"created": f"2025-01-{i + 1:02d}T00:00:00Z", "architecture": "amd64",
                      "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}  # fmt: skip
            cfg = _blob(http, repo, json.dumps(config).encode())
            doc = {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **cfg},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                            **layer}],
            }  # fmt: skip
            bodies.append(json.dumps(doc).encode())
        for t in range(tags):
            http.put(
                f"/v2/{repo}/manifests/t{t}",
                content=bodies[t % IMAGES_PER_REPO],
                headers={"Content-Type": MANIFEST},
            ).raise_for_status()


def requests_logged(log: Path) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '" HTTP/1.1"' in line
               or " HTTP/1.1\" " in line)  # fmt: skip


def plan_once(url: str, config: Path | None, log: Path) -> dict[str, Any]:
    table: dict[str, Any] = {"url": url, "rules": [{"repositories": "*", "keep_recent": 10}]}
    if config is not None:
        table["gc"] = {"config": str(config), "restart": "true"}
    registries = validate_registries([table])
    before = requests_logged(log)
    started = time.monotonic()
    plan = make_plan(registries, "bilge.keep", env={})
    seconds = time.monotonic() - started
    time.sleep(1)  # the access log is written asynchronously
    requests = requests_logged(log) - before
    return {"storage": config is not None, "seconds": round(seconds, 2), "requests": requests,
            "deletions": len(plan.deletions)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--tags", type=int, default=200)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bilge-registry-bench-"))
    proc, url, config = start(directory)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: fill_repository(url, f"team/app{n}", args.tags),
                          range(args.repos)))  # fmt: skip
        filled = time.monotonic() - started
        tags = args.repos * args.tags
        minimum = 1 + args.repos + tags + 2 * args.repos * IMAGES_PER_REPO
        runs = [plan_once(url, None, directory / "registry.log"),
                plan_once(url, config, directory / "registry.log")]  # fmt: skip
        for run in runs:
            run["requests_per_tag"] = round(run["requests"] / tags, 3)
        result = {"repositories": args.repos, "tags": tags, "fill_seconds": round(filled, 1),
                  "minimum_api_requests": minimum,
                  "minimum_requests_per_tag": round(minimum / tags, 3), "runs": runs}  # fmt: skip
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", "--one-file-system", str(directory)], check=False)


if __name__ == "__main__":
    main()
