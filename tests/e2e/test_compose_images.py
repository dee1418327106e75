"""Which images the Compose stack runs: the upstream ones wherever they are here or can be pulled,
the offline stand-ins only for the others, saying which and why. This machine has no registry, so
the upstream path is tested as far as it goes without one: the exact pulls attempted and the
fallback taken, a forced `upstream` refused, and a mixed stack (one upstream name present, the
rest stand-ins) started for real."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from harness.errors import StackStartError
from harness.stacks import compose
from harness.stacks.compose import SERVICE_IMAGES, ComposeStack, ImageChoice, offline_override, project_resources
from harness.stacks.select import compose_available

ENGINE = compose_available()
COMPOSE_DIR = Path(compose.__file__).resolve().parents[2] / "compose"
pytestmark = [pytest.mark.docker]
needs_engine = pytest.mark.skipif(not ENGINE, reason="no Docker engine answers: `bash compose/ci-setup.sh` sets it up")
UPSTREAM = [upstream for upstream, _ in SERVICE_IMAGES.values()]


def _images_of(path: Path) -> dict[str, str]:
    """service -> image, as a Compose file names them (two-space services, four-space keys)."""
    found: dict[str, str] = {}
    service = None
    for line in path.read_text().splitlines():
        if match := re.fullmatch(r"  (\w+):", line):
            service = match.group(1)
        elif (match := re.fullmatch(r"    image: (\S+)", line)) and service:
            found[service] = match.group(1)
    return found


def test_the_image_table_names_what_the_two_compose_files_name() -> None:
    upstream = _images_of(COMPOSE_DIR / "docker-compose.yml")
    offline = _images_of(COMPOSE_DIR / "docker-compose.offline.yml")
    assert {s: images[0] for s, images in SERVICE_IMAGES.items() if s != "app"} == upstream
    assert {s: images[1] for s, images in SERVICE_IMAGES.items()} == offline
    base = re.search(r"^FROM (\S+)", (COMPOSE_DIR / "app" / "Dockerfile").read_text(), re.M)
    assert base and base.group(1) == SERVICE_IMAGES["app"][0]


def test_the_generated_override_is_the_offline_file_for_the_services_that_need_it() -> None:
    everything = [ImageChoice(s, offline, False, "no registry") for s, (_, offline) in SERVICE_IMAGES.items()]
    written = offline_override(everything).replace('"', "")
    by_hand = [line for line in (COMPOSE_DIR / "docker-compose.offline.yml").read_text().splitlines()
               if line and not line.startswith("#")]
    assert written.splitlines() == by_hand
    only_rest = offline_override([ImageChoice("rest", "simcity/rest", False, "x"),
                                  ImageChoice("db", "postgres:15", True, "upstream")])
    assert only_rest == 'services:\n  rest:\n    image: "simcity/rest"\n    pull_policy: never\n'
    assert offline_override([ImageChoice("db", "postgres:15", True, "upstream")]) == "services: {}\n"


@pytest.fixture
def fresh_pulls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compose, "_unpullable", {})
    monkeypatch.delenv(compose.IMAGES_ENV, raising=False)


def _present(client: docker.DockerClient, image: str) -> bool:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


@pytest.fixture
def no_upstream_image() -> Iterator[docker.DockerClient]:
    if not ENGINE:
        pytest.skip("no Docker engine answers")
    client = docker.from_env()
    try:
        if any(_present(client, image) for image in UPSTREAM):
            pytest.skip("an upstream image is here already: this machine is not the registry-less case")
        yield client
    finally:
        client.close()


@needs_engine
@pytest.mark.timeout(400)
def test_without_a_registry_each_upstream_image_is_tried_once_and_its_stand_in_runs(
        fresh_pulls: None, no_upstream_image: docker.DockerClient) -> None:
    said: list[str] = []
    with ComposeStack({"BOOKING_STRATEGY": "atomic"}, log=said.append) as stack:
        assert stack.images == "offline"
        assert said[0] == (f"compose: pulling {', '.join(UPSTREAM)} (not here yet; each bounded by "
                           f"{compose.PULL_TIMEOUT_S:.0f} s)")
        assert sorted(compose._unpullable) == sorted(UPSTREAM)  # noqa: SLF001 - exactly these were tried
        for service, (upstream, offline) in SERVICE_IMAGES.items():
            choice = stack.image_choices[service]
            assert (choice.image, choice.upstream) == (offline, False)
            assert choice.why.startswith(f"{upstream} cannot be pulled: ")
            assert any(line.startswith(f"compose: {service} runs the offline stand-in {offline}: ") for line in said)
        assert "offline stand-ins: db, rest, toxiproxy, app" in stack.describe()
        assert httpx.get(f"{stack.endpoints.app_url}/health", timeout=5).status_code == 200
    again: list[str] = []
    forced = ComposeStack(images="upstream", log=again.append)
    with pytest.raises(StackStartError) as refused, forced:
        pass
    # Asked once per process: the second stack does not wait for the registry again.
    assert not any(line.startswith("compose: pulling") for line in again)
    assert f"{compose.IMAGES_ENV}=upstream, but postgres:15 is not here and cannot be pulled" in str(refused.value)
    assert refused.value.exit_code == 3
    assert project_resources(forced.project) == {"containers": [], "volumes": [], "networks": []}


@needs_engine
@pytest.mark.timeout(400)
def test_an_upstream_image_that_is_here_is_used_beside_the_stand_ins(fresh_pulls: None,
                                                                       no_upstream_image: docker.DockerClient) -> None:
    # The REST stand-in's image under PostgREST's upstream name: the stack must take it as the
    # upstream image, and the stand-ins for the rest.
    name, tag = "postgrest/postgrest", "v12.2.12"
    no_upstream_image.images.get("simcity/rest").tag(name, tag)
    try:
        with ComposeStack({"BOOKING_STRATEGY": "atomic"}, log=lambda line: None) as stack:
            assert stack.images == "mixed"
            rest = stack.image_choices["rest"]
            assert (rest.image, rest.upstream, rest.why) == (f"{name}:{tag}", True, "upstream")
            assert [s for s, c in stack.image_choices.items() if not c.upstream] == ["db", "toxiproxy", "app"]
            running = {c.labels["com.docker.compose.service"]: c.attrs["Config"]["Image"]
                       for c in no_upstream_image.containers.list(
                           filters={"label": f"com.docker.compose.project={stack.project}"})}
            assert running == {"db": "simcity/postgres:15", "rest": f"{name}:{tag}",
                               "toxiproxy": "simcity/toxiproxy", "app": "simcity/app"}
            answer = httpx.get(f"{stack.endpoints.rest_url}/slots?select=id&limit=1", timeout=5,
                               headers={"Authorization": f"Bearer {stack.endpoints.service_key}"})
            assert answer.status_code == 200
    finally:
        no_upstream_image.images.remove(f"{name}:{tag}")  # the tag only: simcity/rest stays
    assert os.environ.get(compose.IMAGES_ENV) is None
