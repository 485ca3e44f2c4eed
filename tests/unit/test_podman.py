"""Podman's engine and storage, in pure code: what bilge makes of Podman's answers
(recorded from Podman 4.3.1) and of a containers/storage tree, and which socket a
rootful or rootless Podman host is reached on. The real engine is tested in
tests/integration (the safety rules, the prediction, the guard)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bilge.collect.cstorage import ContainersStorage
from bilge.engine.hosts import default_socket, resolve_host
from bilge.engine.libpod import is_podman
from bilge.engine.podman import PodmanEngine
from bilge.errors import ObjectConflict, ObjectGone

VERSION = {
    "ApiVersion": "1.41",
    "Version": "4.3.1",
    "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}],
}
IMAGE = "869c6e3bad51781d1e24a80b08824252719327891c58744ef5c3f15fd15136d6"


class Recorded:
    """A transport answering from a table of (method, path) -> (status, JSON)."""

    host = "unix:///run/podman/podman.sock"

    def __init__(self, answers: dict[tuple[str, str], tuple[int, Any]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str, dict[str, str] | None]] = []

    def request(self, method: str, path: str, params: Any = None) -> tuple[int, bytes]:
        self.asked.append((method, path, params))
        status, doc = self.answers.get((method, path), (404, {"message": "no such thing"}))
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return status, body

    def stream(self, path: str, params: Any = None) -> Any:
        raise AssertionError("not streamed here")

    def close(self) -> None:
        pass


def podman(answers: dict[tuple[str, str], tuple[int, Any]]) -> tuple[PodmanEngine, Recorded]:
    transport = Recorded(answers)
    engine = PodmanEngine(transport.host, transport=transport, version=VERSION)  # type: ignore[arg-type]
    return engine, transport


def test_podman_is_told_from_docker_by_its_version_answer() -> None:
    assert is_podman(VERSION)
    assert not is_podman({"ApiVersion": "1.41", "Components": [{"Name": "Engine"}]})
    assert not is_podman({"Components": "nonsense"})


def test_capabilities_say_podman_marks_anonymous_volumes_and_has_no_build_cache() -> None:
    engine, _ = podman({})
    caps = engine.capabilities()
    assert (caps.kind, caps.display_name, caps.storage) == (
        "podman",
        "Podman",
        "containers-storage",
    )
    assert caps.marks_anonymous_volumes and not caps.build_cache and caps.same_host


def test_volumes_come_from_libpod_which_marks_anonymous_ones() -> None:
    listed = [{"Name": "a" * 64, "Anonymous": True}, {"Name": "couch"}]
    engine, transport = podman({("GET", "/v4.0.0/libpod/volumes/json"): (200, listed)})
    assert engine.volumes() == listed
    assert transport.asked[0][1] == "/v4.0.0/libpod/volumes/json"


def test_disk_usage_from_libpod_in_the_shape_collect_reads() -> None:
    df = {
        "Images": [{"ImageID": IMAGE, "SharedSize": 10, "Size": 99}],
        "Volumes": [{"VolumeName": "couch", "Size": 4096}],
    }
    engine, _ = podman({("GET", "/v4.0.0/libpod/system/df"): (200, df)})
    assert engine.system_df() == {
        "Images": [{"Id": f"sha256:{IMAGE}", "SharedSize": 10}],
        "Volumes": [{"Name": "couch", "UsageData": {"Size": 4096}}],
        "BuildCache": [],
    }
    assert engine.system_df(build_cache_only=True) == {"BuildCache": []}


def test_the_ancestor_filter_gets_the_bare_id_podman_understands() -> None:
    engine, transport = podman({("GET", "/v1.41/containers/json"): (200, [{"Id": "c1"}])})
    assert engine.containers_using(image=f"sha256:{IMAGE}") == ["c1"]
    params = transport.asked[-1][2] or {}
    assert json.loads(params["filters"]) == {"ancestor": [IMAGE]}


@pytest.mark.parametrize(
    "message",
    [
        "unable to delete image by ID with more than one tag: please force removal",
        "image used by 1234: image is in use by a container",
        "cannot remove container as it is running - running or paused containers cannot"
        " be removed without force: container state improper",
        "volume couch is being used by the following container(s): 1234",
    ],
)
def test_podmans_500_for_not_without_force_is_a_conflict(message: str) -> None:
    answers = {
        (m, p): (500, {"message": message})
        for m, p in [
            ("DELETE", f"/v1.41/images/{IMAGE}"),
            ("DELETE", "/v4.0.0/libpod/containers/c1"),
            ("DELETE", "/v1.41/volumes/couch"),
        ]
    }
    engine, _ = podman(answers)
    for remove in (
        lambda: engine.remove_image(IMAGE),
        lambda: engine.remove_container("c1"),
        lambda: engine.remove_volume("couch"),
    ):
        with pytest.raises(ObjectConflict):
            remove()


def test_other_500s_stay_errors_and_404_stays_gone() -> None:
    engine, _ = podman({("DELETE", "/v1.41/volumes/x"): (500, {"message": "disk on fire"})})
    with pytest.raises(Exception, match="disk on fire") as caught:
        engine.remove_volume("x")
    assert not isinstance(caught.value, ObjectConflict)
    with pytest.raises(ObjectGone):
        engine.remove_volume("missing")


def test_events_in_dockers_words_and_false_deletions_dropped() -> None:
    died = {"Type": "container", "Action": "died", "status": "died", "Actor": {"ID": "c1"}}
    assert PodmanEngine.normalise(died)["Action"] == "die"
    deleted = {"Type": "image", "Action": "delete", "Actor": {"ID": IMAGE}}
    assert PodmanEngine.normalise(deleted)["Actor"]["ID"] == f"sha256:{IMAGE}"
    still_there, _ = podman({("GET", f"/v1.41/images/{IMAGE}/json"): (200, {"Id": IMAGE})})
    assert not still_there.believable(deleted)  # a failed removal's event
    gone, _ = podman({})
    assert gone.believable(deleted)
    assert gone.believable(died)


def test_past_events_read_from_libpods_log() -> None:
    lines = b"\n".join(
        json.dumps(e).encode()
        for e in (
            {"Type": "container", "Action": "died", "Actor": {"ID": "c1"}, "time": 5},
            {"Type": "image", "Action": "pull", "Actor": {"ID": IMAGE}, "time": 6},
        )
    )
    engine, transport = podman({("GET", "/v4.0.0/libpod/events"): (200, lines + b"\ntorn{")})
    events = engine.past_events(("container", "image"), since=1.0)
    assert [e["Action"] for e in events] == ["die", "pull"]
    params = transport.asked[-1][2] or {}
    assert params["stream"] == "false" and params["since"] == "1"


# --- containers/storage ------------------------------------------------------------


def _write(path: Path, data: bytes | str = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


@pytest.fixture
def graph_root(tmp_path: Path) -> Iterator[Path]:
    """A small containers/storage tree: a base layer, an image layer on it, a
    container's layer on that, an orphaned layer folder, and two volumes."""
    root = tmp_path / "storage"
    layers = [
        {"id": "base", "diff-size": 100},
        {"id": "top", "parent": "base", "diff-size": 200},
        {"id": "ctr", "parent": "top"},
    ]
    _write(root / "overlay-layers" / "layers.json", json.dumps(layers))
    _write(root / "overlay-images" / "images.json", json.dumps([{"id": IMAGE, "layer": "top"}]))
    containers = [{"id": "c1", "layer": "ctr", "image": IMAGE}]
    _write(root / "overlay-containers" / "containers.json", json.dumps(containers))
    for layer in ("base", "top", "ctr", "orphan"):
        _write(root / "overlay" / layer / "diff" / "file", b"x" * 5000)
    _write(root / "overlay-containers" / "c1" / "userdata" / "ctr.log", b"log\n" * 1000)
    _write(root / "overlay-images" / IMAGE / "manifest", b"{}")
    _write(root / "volumes" / "pg" / "_data" / "deep" / "er" / "PG_VERSION", b"15\n")
    _write(root / "volumes" / "scratch" / "_data" / "x", b"y" * 10_000)
    yield root


def test_storage_reads_layers_images_and_containers(graph_root: Path) -> None:
    store = ContainersStorage(str(graph_root), "overlay")
    assert ContainersStorage.readable(str(graph_root))
    assert store.image_layers(f"sha256:{IMAGE}") == ("layer:base", "layer:top")
    assert store.image_layers("sha256:" + "0" * 64) is None
    assert (store.layer_bytes("layer:top") or 0) >= 5000
    files = store.container("c1")
    assert files.layer_bytes is not None and files.layer_bytes >= 5000
    assert files.log_driver == "k8s-file" and files.log_file_bytes >= 4000
    assert files.dir_bytes >= files.log_file_bytes
    assert store.image_meta_bytes(IMAGE) > 0


def test_storage_finds_database_files_at_any_depth_in_volumes(graph_root: Path) -> None:
    store = ContainersStorage(str(graph_root), "overlay")
    pg = store.scan_volume("pg", str(graph_root / "volumes" / "pg" / "_data"))
    scratch = store.scan_volume("scratch", str(graph_root / "volumes" / "scratch" / "_data"))
    assert pg is not None and pg[0].markers and pg[0].complete
    assert scratch is not None and not scratch[0].markers and scratch[0].bytes >= 10_000
    # A mountpoint outside the volume path is not read (it may be another filesystem).
    assert store.scan_volume("pg", str(graph_root / "overlay" / "base" / "diff")) is None


def test_storage_orphans_are_layer_folders_no_record_names(graph_root: Path) -> None:
    store = ContainersStorage(str(graph_root), "overlay")
    found = store.orphans()
    assert found is not None and [name for name, _, _ in found] == ["orphan"]
    assert store.orphan_still_unused("orphan") == ""
    assert store.orphan_still_unused("base") == "referenced again"
    store.remove_orphan("orphan")
    assert not (graph_root / "overlay" / "orphan").exists()
    (graph_root / "overlay-layers" / "layers.json").unlink()
    assert store.orphans() is None  # records unreadable: nothing is an orphan


# --- which socket -------------------------------------------------------------------


def test_container_host_is_honoured_after_docker_host() -> None:
    env = {"CONTAINER_HOST": "unix:///run/podman/podman.sock", "HOME": "/nonexistent"}
    assert resolve_host(None, env) == "unix:///run/podman/podman.sock"
    env["DOCKER_HOST"] = "unix:///d.sock"
    assert resolve_host(None, env) == "unix:///d.sock"


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"/var/run/docker.sock", "/run/podman/podman.sock"}, "unix:///var/run/docker.sock"),
        ({"/run/podman/podman.sock"}, "unix:///run/podman/podman.sock"),
        ({"/run/user/1000/podman/podman.sock"}, "unix:///run/user/1000/podman/podman.sock"),
        (set(), "unix:///var/run/docker.sock"),
    ],
)
def test_the_default_socket_is_the_first_that_exists(present: set[str], expected: str) -> None:
    env = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    assert default_socket(env, exists=present.__contains__) == expected


def test_networks_come_from_libpod_and_the_default_one_is_built_in() -> None:
    listed = [
        {"name": "podman", "id": "2f25", "driver": "bridge", "created": "2026-12-03T13:00:00Z"},
        {"name": "idle-net", "id": "6762", "driver": "bridge", "created": "2026-12-03T13:00:00Z",
         "labels": {"bilge.keep": "1"}},
    ]  # fmt: skip
    engine, _ = podman({("GET", "/v4.0.0/libpod/networks/json"): (200, listed)})
    got = engine.networks()
    assert [(n["Id"], n["Name"], n["Labels"]) for n in got] == [
        ("2f25", "podman", {}),
        ("6762", "idle-net", {"bilge.keep": "1"}),
    ]
    from bilge.model import BUILTIN_NETWORKS

    assert "podman" in BUILTIN_NETWORKS


@pytest.mark.parametrize("nonsense", [5, "x", None, [1, "a", None], {"a": 1}])
def test_nonsense_from_libpod_is_left_out_or_one_engine_error(nonsense: object) -> None:
    """Never an AttributeError or TypeError (an "internal error"): what libpod says
    beside the point is left out, a listing that is no list is an engine error."""
    from bilge.errors import EngineError

    answers: dict[tuple[str, str], tuple[int, Any]] = {
        ("GET", "/v1.41/containers/json"): (200, [{"Id": "c1"}, "junk", 7]),
        ("GET", "/v4.0.0/libpod/containers/json"): (200, nonsense),
        ("GET", "/v4.0.0/libpod/system/df"): (200, {"Images": nonsense, "Volumes": nonsense}),
        ("GET", "/v4.0.0/libpod/networks/json"): (200, nonsense),
        ("GET", "/v4.0.0/libpod/info"): (200, nonsense),
    }
    engine, _ = podman(answers)
    if isinstance(nonsense, list):
        assert engine.containers(size=False)[0] == {"Id": "c1"}
    else:
        with pytest.raises(EngineError, match="list containers: unexpected answer"):
            engine.containers(size=False)
    df = engine.system_df()
    assert df["BuildCache"] == [] and all(isinstance(i, dict) for i in df["Images"])
    for call in (engine.networks, engine.info):
        try:
            got = call()
        except EngineError:
            continue
        assert isinstance(got, list | dict)


def test_libpods_listing_says_what_the_compatible_one_does_not() -> None:
    """The finishing time, and which container is a pod's infra container (Podman
    will not remove it alone), whichever listing the mounts come from."""
    listed = [
        {"Id": "c1", "ExitedAt": 1796308724, "IsInfra": False},
        {"Id": "i1", "ExitedAt": 0, "IsInfra": True, "Pod": "p" * 64, "PodName": "web"},
    ]
    answers: dict[tuple[str, str], tuple[int, Any]] = {
        ("GET", "/v4.0.0/libpod/containers/json"): (200, listed),
        ("GET", "/v1.41/containers/json"): (200, [{"Id": "c1"}, {"Id": "i1"}]),
    }
    engine, _ = podman(answers)  # no /info here: the compatible listing is used
    got = {c["Id"]: c for c in engine.containers(size=False)}
    assert got["c1"]["FinishedAt"] == 1796308724 and "InfraOfPod" not in got["c1"]
    assert got["i1"]["InfraOfPod"] == "web" and "FinishedAt" not in got["i1"]
    from bilge.engine.libpod import compatible_container

    shaped = compatible_container(listed[1], (), "")
    assert shaped["InfraOfPod"] == "web" and shaped["Mounts"] == []
