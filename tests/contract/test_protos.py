"""The tryon.v1 contracts: buf lint is clean, the generated code is current, the surface is complete."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tryon.shared.proto import (
    body_service_pb2,
    events_pb2,
    garment_service_pb2,
    recommendation_service_pb2,
)

REPO = Path(__file__).resolve().parents[2]
PROTOS = REPO / "protos"

EXPECTED_RPCS = {
    body_service_pb2: (
        "BodyService",
        {"CreateBody", "GetBody", "DeleteBody", "SampleBodies", "AdviseSize", "RenderSilhouette", "GetBodyMesh"},
    ),
    garment_service_pb2: (
        "GarmentService",
        {
            "GenerateGarments",
            "EncodeGarment",
            "InterpolateGarments",
            "RegisterGarment",
            "ImportGarments",
            "GetGarment",
            "GetGarmentImage",
            "ListGarments",
            "RenderTryOn",
            "RenderTryOnModel",
        },
    ),
    recommendation_service_pb2: (
        "RecommendationService",
        {
            "RecommendGarments",
            "RecommendOutfits",
            "CompleteOutfit",
            "SimilarGarments",
            "RecordInteractions",
            "DeleteUser",
        },
    ),
}


def buf_executable() -> str:
    local = REPO / "node_modules" / ".bin" / "buf"
    found = str(local) if local.exists() else shutil.which("buf")
    assert found, "buf is not installed: run `make setup` (it installs @bufbuild/buf from package-lock.json)"
    return found


def test_buf_lint_is_clean():
    result = subprocess.run(
        [buf_executable(), "lint"], cwd=PROTOS, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_is_current():
    result = subprocess.run(
        [sys.executable, str(PROTOS / "codegen.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_every_rpc_of_the_architecture_is_declared():
    for module, (service_name, rpcs) in EXPECTED_RPCS.items():
        service = module.DESCRIPTOR.services_by_name[service_name]
        assert {method.name for method in service.methods} == rpcs
        for method in service.methods:
            assert method.input_type.name == f"{method.name}Request"
            assert method.output_type.name == f"{method.name}Response"


def test_every_event_carries_an_id_and_a_time():
    for name, message in events_pb2.DESCRIPTOR.message_types_by_name.items():
        fields = message.fields_by_name
        assert fields["event_id"].number == 1, name
        assert fields["occurred_at"].message_type.full_name == "google.protobuf.Timestamp", name
