"""The GLB writer and reader: round trip, and the structure the glTF 2.0 specification requires."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from tryon.shared.glb import GlbError, GlbMesh, read_chunks, read_glb, write_glb


def _tetrahedron() -> tuple[np.ndarray, np.ndarray]:
    vertices = np.array([[0, 0, 0], [0.5, 0, 0], [0, 1.7, 0], [0, 0, 0.25]], dtype=np.float32)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.uint32)
    return vertices, faces


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 5), (200, 10, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_textured_mesh_round_trips_with_its_extras():
    vertices, faces = _tetrahedron()
    normals = vertices / np.maximum(np.linalg.norm(vertices, axis=1, keepdims=True), 1e-6)
    uv = np.array([[0, 0], [1, 0], [0, 1], [0.5, 0.5]], dtype=np.float32)
    extras = {"keypoints": {"neck": [0.0, 1.5, 0.02]}, "measured_mm": {"stature": 1700.0}}
    mesh = GlbMesh(vertices, faces, normals=normals, uv=uv, texture_png=_png(), name="body", extras=extras)
    (back,) = read_glb(write_glb(mesh))
    np.testing.assert_array_equal(back.vertices, vertices)
    np.testing.assert_array_equal(back.faces, faces)
    np.testing.assert_allclose(back.normals, normals)
    np.testing.assert_array_equal(back.uv, uv)
    assert back.texture_png == _png()
    assert back.name == "body"
    assert back.extras == extras


def test_several_meshes_keep_their_order_and_colours():
    vertices, faces = _tetrahedron()
    meshes = [GlbMesh(vertices, faces, name="body"), GlbMesh(vertices * 2, faces[:2], name="top", colour=(1, 0, 0, 1))]
    back = read_glb(write_glb(meshes))
    assert [m.name for m in back] == ["body", "top"]
    np.testing.assert_array_equal(back[1].vertices, vertices * 2)
    assert back[1].faces.shape == (2, 3)
    assert back[1].colour == (1, 0, 0, 1)
    assert back[1].normals is None and back[1].uv is None and back[1].texture_png is None


def test_the_output_is_structurally_valid_gltf():
    vertices, faces = _tetrahedron()
    uv = np.zeros((4, 2), dtype=np.float32)
    data = write_glb([GlbMesh(vertices, faces, uv=uv, texture_png=_png()), GlbMesh(vertices[:3], faces[:1])])
    magic, version, total = struct.unpack_from("<III", data)
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    assert len(data) % 4 == 0
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_length % 4 == 0
    document = json.loads(data[20 : 20 + json_length])
    bin_length, bin_type = struct.unpack_from("<II", data, 20 + json_length)
    assert bin_type == 0x004E4942 and bin_length % 4 == 0
    assert 20 + json_length + 8 + bin_length == len(data)
    assert document["buffers"][0]["byteLength"] == bin_length
    for view in document["bufferViews"]:
        assert view["byteOffset"] % 4 == 0
        assert view["byteOffset"] + view["byteLength"] <= bin_length
    for mesh_index, mesh in enumerate(document["meshes"]):
        primitive = mesh["primitives"][0]
        position = document["accessors"][primitive["attributes"]["POSITION"]]
        expected = vertices if mesh_index == 0 else vertices[:3]
        assert position["min"] == pytest.approx(expected.min(axis=0).tolist())
        assert position["max"] == pytest.approx(expected.max(axis=0).tolist())
        indices = document["accessors"][primitive["indices"]]
        assert indices["componentType"] == 5125 and indices["count"] % 3 == 0
        assert indices["max"] == [int((faces if mesh_index == 0 else faces[:1]).max())]
    assert document["images"][0]["mimeType"] == "image/png"
    assert read_chunks(data)[0] == document


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda d: b"glTX" + d[4:], "magic"),
        (lambda d: d[:8] + struct.pack("<I", len(d) + 4) + d[12:], "header says"),
        (lambda d: d[:-4], "header says"),
        (lambda d: d[:10], "at least 20 bytes"),
        (lambda d: d[:20] + b"x" + d[21:], "does not parse"),
    ],
)
def test_damaged_bytes_are_refused_with_a_reason(mangle, message):
    vertices, faces = _tetrahedron()
    with pytest.raises(GlbError, match=message):
        read_glb(mangle(write_glb(GlbMesh(vertices, faces))))


def test_meshes_that_cannot_be_written_are_refused():
    vertices, faces = _tetrahedron()
    with pytest.raises(GlbError, match="index existing"):
        write_glb(GlbMesh(vertices, faces + 4))
    with pytest.raises(GlbError, match="finite"):
        write_glb(GlbMesh(np.full((4, 3), np.nan, dtype=np.float32), faces))
    with pytest.raises(GlbError, match="uv"):
        write_glb(GlbMesh(vertices, faces, texture_png=_png()))
    with pytest.raises(GlbError, match="JSON"):
        write_glb(GlbMesh(vertices, faces, extras={"bad": float("nan")}))
