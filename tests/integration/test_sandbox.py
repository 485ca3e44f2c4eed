"""The sandbox engine and the helpers do what the other integration tests rely on."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from tests.integration.helpers import (
    BASE_IMAGE,
    SYSTEM_SOCKETS,
    ContainerState,
    DockerError,
    Sandbox,
    build_image,
    container_state,
    df,
    make_dangling,
    make_volume,
    reset_engine,
    run_container,
)


def _read_file(sb: Sandbox, container: str, path: str) -> bytes:
    """A file's content from a container (any state), through the archive API."""
    with sb.api() as api:
        stream, _ = api.get_archive(container, path)
        data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        assert member is not None
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read()


def _image_size(sb: Sandbox, ref: str) -> int:
    with sb.api() as api:
        return int(api.inspect_image(ref)["Size"])


def test_engine_speaks_api_1_41_or_newer(engine: Sandbox) -> None:
    with engine.api() as api:
        version = api.version()
    major, minor = (int(x) for x in version["ApiVersion"].split("."))
    assert (major, minor) >= (1, 41)
    cli = engine.docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip()
    assert cli == version["ApiVersion"]


def test_fixture_talks_to_the_sandbox_socket_only(engine: Sandbox) -> None:
    assert engine.host == f"unix://{engine.dir}/docker.sock"
    assert engine.host not in SYSTEM_SOCKETS
    assert (engine.dir / "docker.sock").is_socket()
    assert engine.environ()["DOCKER_HOST"] == engine.host
    with pytest.raises(ValueError, match="DOCKER_HOST"):
        engine.environ({"DOCKER_HOST": "unix:///var/run/docker.sock"})
    root = engine.docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()
    assert root == str(engine.data_root)


def test_base_image_exists_and_runs(engine: Sandbox) -> None:
    engine.docker("image", "inspect", BASE_IMAGE)
    out = engine.docker("run", "--rm", "--network", "none", BASE_IMAGE, "sh", "-c", "echo hi")
    assert out.stdout == "hi\n"


def test_docker_error_shows_what_docker_said(engine: Sandbox) -> None:
    with pytest.raises(DockerError, match="No such image"):
        engine.docker("image", "inspect", "no-such-image:here")
    assert engine.docker("image", "inspect", "no-such-image:here", check=False).returncode == 1


def test_run_container_states(engine: Sandbox) -> None:
    created = run_container(engine, state="created", name="c-created")
    exited = run_container(engine, state="exited", labels={"team": "a"})
    running = run_container(engine, state="running")
    assert len(created) == len(exited) == len(running) == 64
    assert container_state(engine, created) == "created"
    assert container_state(engine, exited) == "exited"
    assert container_state(engine, running) == "running"
    label = engine.docker("inspect", "-f", '{{index .Config.Labels "team"}}', exited)
    assert label.stdout.strip() == "a"
    assert engine.docker("inspect", "-f", "{{.Name}}", created).stdout.strip() == "/c-created"
    network = engine.docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", running)
    assert network.stdout.strip() == "none"


def test_run_container_exit_code_is_the_commands(engine: Sandbox) -> None:
    cid = run_container(engine, command="exit 3")
    assert engine.docker("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "3"


@pytest.mark.parametrize("state", ["created", "exited", "running"])
def test_run_container_writes_files(engine: Sandbox, state: ContainerState) -> None:
    content = bytes(range(256)) + b"'%\\ end\n"
    cid = run_container(
        engine,
        state=state,
        volumes=["/data", "named:/named"],
        write={"/data/PG_VERSION": b"15\n", "/named/blob": 5000, "/layer/raw.bin": content},
    )
    assert container_state(engine, cid) == state
    assert _read_file(engine, cid, "/data/PG_VERSION") == b"15\n"
    assert _read_file(engine, cid, "/layer/raw.bin") == content
    assert len(_read_file(engine, cid, "/named/blob")) == 5000
    # The anonymous volume really holds the file (it is not in the writable layer).
    anon = engine.docker(
        "inspect", "-f", '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}',
        cid,
    ).stdout.strip()  # fmt: skip
    assert len(anon) == 64
    out = engine.docker(
        "run", "--rm", "--network", "none", "-v", f"{anon}:/v", BASE_IMAGE, "cat", "/v/PG_VERSION"
    )
    assert out.stdout == "15\n"


def test_run_container_write_failure_is_an_error(engine: Sandbox) -> None:
    # /proc is read-only in a container: the write step fails, not the command.
    with pytest.raises(DockerError):
        run_container(engine, write={"/proc/sys/nope/x": b"1"})


def test_make_volume(engine: Sandbox) -> None:
    make_volume(
        engine,
        "pgdata",
        files={"PG_VERSION": b"15\n", "base/16384": 10_000},
        labels={"app": "db"},
    )
    out = engine.docker(
        "run", "--rm", "--network", "none", "-v", "pgdata:/v", BASE_IMAGE,
        "sh", "-c", "cat /v/PG_VERSION; stat -c %s /v/base/16384",
    )  # fmt: skip
    assert out.stdout == "15\n10000\n"
    label = engine.docker("volume", "inspect", "-f", '{{index .Labels "app"}}', "pgdata")
    assert label.stdout.strip() == "db"
    assert engine.docker("ps", "-aq").stdout.strip() == ""  # the filler is gone


def test_make_volume_empty(engine: Sandbox) -> None:
    make_volume(engine, "empty")
    assert engine.docker("volume", "ls", "-q").stdout.split() == ["empty"]


def test_build_image_has_its_own_layer(engine: Sandbox) -> None:
    first = build_image(engine, "app:1", size=100_000, labels={"bilge.keep": "true"})
    second = build_image(engine, "app:2", size=100_000)
    assert first.startswith("sha256:") and first != second
    with engine.api() as api:
        base_layers = api.inspect_image(BASE_IMAGE)["RootFS"]["Layers"]
        one, two = api.inspect_image(first), api.inspect_image(second)
    assert one["RootFS"]["Layers"][:-1] == base_layers
    assert one["RootFS"]["Layers"][-1] != two["RootFS"]["Layers"][-1]
    assert one["Config"]["Labels"]["bilge.keep"] == "true"
    assert one["Size"] - _image_size(engine, BASE_IMAGE) >= 100_000


def test_buildkit_build_leaves_build_cache(engine: Sandbox) -> None:
    image = build_image(engine, "cached:1", size=20_000, buildkit=True)
    engine.docker("image", "inspect", image)
    rows = engine.docker("system", "df", "--format", "{{.Type}}={{.TotalCount}}").stdout
    counts = dict(line.split("=") for line in rows.splitlines())
    assert int(counts["Build Cache"]) > 0
    with engine.api() as api:
        assert api.df()["BuildCache"]


def test_make_dangling(engine: Sandbox) -> None:
    dangling = make_dangling(engine, "flip:latest", 10_000)
    listed = engine.docker("images", "-f", "dangling=true", "-q", "--no-trunc").stdout.split()
    assert dangling in listed
    tagged = engine.docker("image", "inspect", "-f", "{{.Id}}", "flip:latest").stdout.strip()
    assert tagged != dangling


def test_reset_leaves_only_the_base_image(engine: Sandbox) -> None:
    run_container(engine, state="running", volumes=["/a", "named:/b"])
    run_container(engine, state="exited", volumes=["/c"])
    engine.docker("network", "create", "--internal", "scratchnet")
    build_image(engine, "x:1", buildkit=True)
    make_dangling(engine, "y:1", 10)
    engine.docker("tag", BASE_IMAGE, "alias:1")
    reset_engine(engine)
    assert engine.docker("ps", "-aq").stdout.split() == []
    assert engine.docker("volume", "ls", "-q").stdout.split() == []
    assert "scratchnet" not in engine.docker("network", "ls", "--format", "{{.Name}}").stdout
    images = engine.docker("images", "-a", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert [i for i in images.split() if i != "<none>:<none>"] == [BASE_IMAGE]
    with engine.api() as api:
        assert not api.df()["BuildCache"]


def test_reset_rebuilds_a_removed_base_image(engine: Sandbox) -> None:
    engine.docker("rmi", BASE_IMAGE)
    reset_engine(engine)
    engine.docker("image", "inspect", BASE_IMAGE)


def test_disk_sandbox_has_its_own_small_filesystem(disk_engine: Sandbox) -> None:
    root = os.stat(disk_engine.data_root)
    assert root.st_dev != os.stat(disk_engine.dir.parent).st_dev
    st = df(disk_engine)
    total = st.f_blocks * st.f_frsize
    assert 400 * 10**6 < total <= 512 * 2**20
    assert disk_engine.docker("info", "--format", "{{.DockerRootDir}}").stdout.strip() == str(
        disk_engine.data_root
    )
    cid = run_container(disk_engine, volumes=["/data"], write={"/data/f": 1 << 20})
    assert container_state(disk_engine, cid) == "exited"


def test_df_sees_writes(disk_engine: Sandbox) -> None:
    before = df(disk_engine)
    run_container(disk_engine, volumes=["/data"], write={"/data/big": (32 << 20) + 123})
    after = df(disk_engine)
    assert (before.f_bfree - after.f_bfree) * after.f_frsize >= 32 << 20


def test_a_full_disk_fails_writes_with_enospc(disk_engine: Sandbox) -> None:
    st = df(disk_engine)
    whole_disk = st.f_blocks * st.f_frsize
    with pytest.raises(DockerError, match="No space left on device"):
        run_container(disk_engine, volumes=["/data"], write={"/data/big": whole_disk})
    assert df(disk_engine).f_bavail * st.f_frsize < 1 << 20
