"""deploy/ checked as data: no container engine runs here, so the files are parsed and cross-checked."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SERVICES = {"body": "BodyService", "garment": "GarmentService", "recommendation": "RecommendationService"}


def load_compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    joined = path.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_kafka_runs_in_kraft_mode_without_zookeeper():
    compose = load_compose()
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "zookeeper" not in compose["services"]
    assert "healthcheck" in kafka


def test_each_service_is_built_from_its_dockerfile_and_reaches_kafka():
    compose = load_compose()
    ports_seen = set()
    for name, service_name in SERVICES.items():
        service = compose["services"][name]
        dockerfile = REPO / service["build"]["dockerfile"]
        assert dockerfile.exists(), dockerfile
        environment = service["environment"]
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        port = environment[f"TRYON_{name.upper()}_PORT"]
        assert port not in ports_seen
        ports_seen.add(port)
        assert f"{port}:{port}" in service["ports"]
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        probe = service["healthcheck"]["test"]
        assert probe[1:4] == ["python", "-m", "tryon.shared.healthcheck"]
        assert probe[4] == f"127.0.0.1:{port}" and probe[5] == f"tryon.v1.{service_name}"


def test_dockerfiles_copy_existing_paths_and_run_their_service():
    for name in (*SERVICES, "storefront"):
        instructions = dockerfile_instructions(DEPLOY / "docker" / f"{name}.Dockerfile")
        keywords = [keyword for keyword, _ in instructions]
        assert keywords[0] == "FROM"
        for keyword, argument in instructions:
            if keyword == "COPY":
                for source in argument.split()[:-1]:
                    assert (REPO / source).exists(), f"{name}.Dockerfile copies missing {source}"
        runs = [argument for keyword, argument in instructions if keyword == "RUN"]
        torch_step = next(i for i, run in enumerate(runs) if "torch==2.13.0" in run)
        project_step = runs.index("pip install .")
        assert torch_step < project_step, "torch must be pinned before the project pulls an unpinned one"
        command = dict(instructions)["CMD"]
        assert f'"tryon.services.{name}"' in command
        assert importlib.util.find_spec(f"tryon.services.{name}") is not None
        assert "USER" in keywords, f"{name}.Dockerfile runs as root"


def test_the_storefront_reaches_every_service_and_is_healthy_only_when_ready():
    compose = load_compose()
    storefront = compose["services"]["storefront"]
    assert (REPO / storefront["build"]["dockerfile"]).exists()
    environment = storefront["environment"]
    for name in SERVICES:
        port = compose["services"][name]["environment"][f"TRYON_{name.upper()}_PORT"]
        assert environment[f"TRYON_STOREFRONT_{name.upper()}_SERVICE_ADDRESS"] == f"{name}:{port}"
        assert storefront["depends_on"][name]["condition"] == "service_healthy"
    port = environment["TRYON_STOREFRONT_PORT"]
    assert f"{port}:{port}" in storefront["ports"]
    assert environment["TRYON_STOREFRONT_HOST"] == "0.0.0.0"
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(storefront["healthcheck"]["test"])
