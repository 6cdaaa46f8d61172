"""Binary glTF 2.0 (GLB) of triangle meshes: a small, explicit writer and the reader of what it writes.

A GLB is a 12-byte header (magic ``glTF``, version 2, total length), a JSON chunk and a binary
chunk, each chunk's length a multiple of 4 (JSON padded with spaces, binary with zeros). Every
mesh becomes one node with one triangle primitive: positions (float32, metres, with the min/max
glTF requires), optional normals and texture coordinates, uint32 indices, and a material that is
either a flat colour or an embedded PNG texture. A node's ``extras`` carries JSON the caller wants
to travel with the mesh (keypoints, measurements). glTF's axes are right-handed with +Y up and the
front of an asset facing +Z; texture coordinates start at the picture's top-left corner.

Reference: Khronos glTF 2.0 specification, sections 4.4 (GLB file format) and 5 (properties).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAGIC = 0x46546C67  # "glTF" read as a little-endian uint32
VERSION = 2
CHUNK_JSON = 0x4E4F534A  # "JSON"
CHUNK_BIN = 0x004E4942  # "BIN\0"
FLOAT = 5126
UNSIGNED_INT = 5125
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
TRIANGLES = 4
_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}
_DTYPES = {FLOAT: np.dtype("<f4"), UNSIGNED_INT: np.dtype("<u4")}
DEFAULT_COLOUR = (0.75, 0.62, 0.55, 1.0)
"""Base colour (linear RGBA) of a mesh without a texture."""


class GlbError(ValueError):
    """The bytes are not a GLB this module reads, or a mesh cannot be written; the message says why."""


@dataclass(frozen=True)
class GlbMesh:
    """One triangle mesh of a GLB.

    ``vertices`` (N, 3) float32 in metres; ``faces`` (F, 3) indices into them, counter-clockwise
    seen from outside; ``normals`` (N, 3) unit vectors and ``uv`` (N, 2) texture coordinates, both
    optional; ``texture_png`` the PNG the uv coordinates sample (needs ``uv``); ``colour`` the
    linear RGBA base colour used without a texture; ``extras`` JSON-serialisable facts kept on the
    mesh's node.
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None = None
    uv: np.ndarray | None = None
    texture_png: bytes | None = None
    name: str = "mesh"
    colour: tuple[float, float, float, float] = DEFAULT_COLOUR
    extras: Mapping[str, Any] = field(default_factory=dict)


def write_glb(meshes: GlbMesh | Sequence[GlbMesh]) -> bytes:
    """The GLB bytes of one mesh or of several (one node each, in one scene). Raises GlbError."""
    meshes = [meshes] if isinstance(meshes, GlbMesh) else list(meshes)
    if not meshes:
        raise GlbError("a GLB needs at least one mesh")
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "tryon"},
        "scene": 0,
        "scenes": [{"nodes": list(range(len(meshes)))}],
        "nodes": [],
        "meshes": [],
        "materials": [],
        "accessors": [],
        "bufferViews": [],
        "buffers": [],
    }
    binary = bytearray()

    def add_view(payload: bytes, target: int | None) -> int:
        binary.extend(b"\0" * (-len(binary) % 4))
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(binary), "byteLength": len(payload)}
        if target is not None:
            view["target"] = target
        binary.extend(payload)
        document["bufferViews"].append(view)
        return len(document["bufferViews"]) - 1

    def add_accessor(values: np.ndarray, component: int, kind: str, target: int, bounds: bool) -> int:
        array = np.ascontiguousarray(values, dtype=_DTYPES[component])
        accessor: dict[str, Any] = {
            "bufferView": add_view(array.tobytes(), target),
            "componentType": component,
            "count": int(array.shape[0]),
            "type": kind,
        }
        if bounds:
            columns = array.reshape(array.shape[0], -1)
            accessor["min"] = [_json_number(v) for v in columns.min(axis=0)]
            accessor["max"] = [_json_number(v) for v in columns.max(axis=0)]
        document["accessors"].append(accessor)
        return len(document["accessors"]) - 1

    for mesh in meshes:
        vertices, faces = _checked(mesh)
        attributes = {"POSITION": add_accessor(vertices, FLOAT, "VEC3", ARRAY_BUFFER, bounds=True)}
        if mesh.normals is not None:
            attributes["NORMAL"] = add_accessor(mesh.normals, FLOAT, "VEC3", ARRAY_BUFFER, bounds=False)
        if mesh.uv is not None:
            attributes["TEXCOORD_0"] = add_accessor(mesh.uv, FLOAT, "VEC2", ARRAY_BUFFER, bounds=False)
        indices = add_accessor(faces.reshape(-1), UNSIGNED_INT, "SCALAR", ELEMENT_ARRAY_BUFFER, bounds=True)
        material: dict[str, Any] = {"name": f"{mesh.name}_material", "doubleSided": False}
        roughness = {"metallicFactor": 0.0, "roughnessFactor": 0.9}
        if mesh.texture_png is not None:
            document.setdefault("images", []).append(
                {"bufferView": add_view(bytes(mesh.texture_png), None), "mimeType": "image/png"}
            )
            document.setdefault("samplers", [{"magFilter": 9729, "minFilter": 9987, "wrapS": 33071, "wrapT": 33071}])
            document.setdefault("textures", []).append({"source": len(document["images"]) - 1, "sampler": 0})
            roughness["baseColorTexture"] = {"index": len(document["textures"]) - 1}
        else:
            roughness["baseColorFactor"] = [float(c) for c in mesh.colour]
        material["pbrMetallicRoughness"] = roughness
        document["materials"].append(material)
        document["meshes"].append(
            {
                "name": mesh.name,
                "primitives": [
                    {
                        "attributes": attributes,
                        "indices": indices,
                        "material": len(document["materials"]) - 1,
                        "mode": TRIANGLES,
                    }
                ],
            }
        )
        node: dict[str, Any] = {"name": mesh.name, "mesh": len(document["meshes"]) - 1}
        if mesh.extras:
            node["extras"] = dict(mesh.extras)
        document["nodes"].append(node)

    binary.extend(b"\0" * (-len(binary) % 4))
    document["buffers"].append({"byteLength": len(binary)})
    try:
        text = json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise GlbError(f"extras must be JSON without NaN or infinity: {error}") from None
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", MAGIC, VERSION, total),
            struct.pack("<II", len(text), CHUNK_JSON),
            text,
            struct.pack("<II", len(binary), CHUNK_BIN),
            bytes(binary),
        ]
    )


def read_glb(data: bytes) -> list[GlbMesh]:
    """The meshes of a GLB written by ``write_glb`` (node order), checking its structure. Raises GlbError."""
    document, binary = read_chunks(data)
    meshes = []
    for node in document.get("nodes", []):
        primitive = _get(_get(document, "meshes", node.get("mesh")), "primitives", 0)
        attributes = primitive.get("attributes", {})
        if primitive.get("mode", TRIANGLES) != TRIANGLES or "POSITION" not in attributes or "indices" not in primitive:
            raise GlbError(f"node {node.get('name')!r} is not an indexed triangle mesh")
        vertices = _accessor(document, binary, attributes["POSITION"])
        faces = _accessor(document, binary, primitive["indices"])
        if faces.size % 3:
            raise GlbError("the index count is not a multiple of 3")
        faces = faces.reshape(-1, 3)
        if faces.size and int(faces.max()) >= len(vertices):
            raise GlbError("an index points past the last vertex")
        normals = _accessor(document, binary, attributes["NORMAL"]) if "NORMAL" in attributes else None
        uv = _accessor(document, binary, attributes["TEXCOORD_0"]) if "TEXCOORD_0" in attributes else None
        material = _get(document, "materials", primitive.get("material", 0))
        roughness = material.get("pbrMetallicRoughness", {})
        texture_png = None
        colour = tuple(roughness.get("baseColorFactor", DEFAULT_COLOUR))
        if "baseColorTexture" in roughness:
            texture = _get(document, "textures", roughness["baseColorTexture"].get("index"))
            image = _get(document, "images", texture.get("source"))
            texture_png = _view_bytes(document, binary, image.get("bufferView"))
            colour = DEFAULT_COLOUR
        meshes.append(
            GlbMesh(
                vertices=vertices,
                faces=faces,
                normals=normals,
                uv=uv,
                texture_png=texture_png,
                name=str(node.get("name", "mesh")),
                colour=colour,
                extras=node.get("extras", {}),
            )
        )
    return meshes


def read_chunks(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The JSON document and the binary chunk of a GLB, after checking header, lengths and alignment."""
    if len(data) < 20:
        raise GlbError(f"a GLB is at least 20 bytes; got {len(data)}")
    magic, version, total = struct.unpack_from("<III", data, 0)
    if magic != MAGIC:
        raise GlbError("the bytes do not start with the GLB magic 'glTF'")
    if version != VERSION:
        raise GlbError(f"only glTF version 2 is read; got {version}")
    if total != len(data) or total % 4:
        raise GlbError(f"the header says {total} bytes, a multiple of 4; the data has {len(data)}")
    json_length, json_type = struct.unpack_from("<II", data, 12)
    if json_type != CHUNK_JSON or json_length % 4 or 20 + json_length > total:
        raise GlbError("the first chunk must be JSON, its length a multiple of 4 within the file")
    try:
        document = json.loads(data[20 : 20 + json_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GlbError(f"the JSON chunk does not parse: {error}") from None
    if not isinstance(document, dict) or document.get("asset", {}).get("version") != "2.0":
        raise GlbError("the JSON chunk lacks asset.version '2.0'")
    binary = b""
    offset = 20 + json_length
    if offset < total:
        bin_length, bin_type = struct.unpack_from("<II", data, offset)
        if bin_type != CHUNK_BIN or bin_length % 4 or offset + 8 + bin_length != total:
            raise GlbError("the second chunk must be BIN, its length a multiple of 4, ending the file")
        binary = data[offset + 8 : offset + 8 + bin_length]
    buffers = document.get("buffers", [])
    if buffers and buffers[0].get("byteLength", -1) > len(binary):
        raise GlbError("buffer 0 is longer than the BIN chunk")
    return document, binary


def _checked(mesh: GlbMesh) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    faces = np.asarray(mesh.faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not len(vertices):
        raise GlbError(f"vertices must be (N, 3) with N >= 1; got {vertices.shape}")
    if not np.isfinite(vertices).all():
        raise GlbError("vertices must be finite")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise GlbError(f"faces must be (F, 3) integers; got {faces.shape} {faces.dtype}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise GlbError("faces must index existing vertices")
    for label, values, width in (("normals", mesh.normals, 3), ("uv", mesh.uv, 2)):
        if values is not None and np.shape(values) != (len(vertices), width):
            raise GlbError(f"{label} must be ({len(vertices)}, {width}); got {np.shape(values)}")
    if mesh.texture_png is not None and (mesh.uv is None or not bytes(mesh.texture_png[:8]) == b"\x89PNG\r\n\x1a\n"):
        raise GlbError("a texture must be PNG bytes and needs uv coordinates")
    return vertices, faces.astype(np.uint32)


def _json_number(value: Any) -> float | int:
    number = value.item()
    if isinstance(number, float) and not math.isfinite(number):
        raise GlbError("accessor bounds must be finite")
    return number


def _get(document: Mapping[str, Any], key: str, index: Any) -> dict[str, Any]:
    items = document.get(key, [])
    if not isinstance(index, int) or not 0 <= index < len(items) or not isinstance(items[index], dict):
        raise GlbError(f"{key}[{index}] is missing")
    return items[index]


def _view_bytes(document: Mapping[str, Any], binary: bytes, index: Any) -> bytes:
    view = _get(document, "bufferViews", index)
    start, length = view.get("byteOffset", 0), view.get("byteLength", -1)
    if view.get("buffer") != 0 or start < 0 or length < 0 or start + length > len(binary):
        raise GlbError(f"bufferViews[{index}] lies outside the BIN chunk")
    return binary[start : start + length]


def _accessor(document: Mapping[str, Any], binary: bytes, index: Any) -> np.ndarray:
    accessor = _get(document, "accessors", index)
    dtype = _DTYPES.get(accessor.get("componentType"))
    width = _COMPONENTS.get(accessor.get("type"))
    count = accessor.get("count", -1)
    if dtype is None or width is None or not isinstance(count, int) or count < 0:
        raise GlbError(f"accessors[{index}] is not float32/uint32 SCALAR, VEC2 or VEC3")
    view = _get(document, "bufferViews", accessor.get("bufferView"))
    if view.get("byteStride", dtype.itemsize * width) != dtype.itemsize * width:
        raise GlbError(f"accessors[{index}] is interleaved, which this reader does not read")
    payload = _view_bytes(document, binary, accessor.get("bufferView"))
    start = accessor.get("byteOffset", 0)
    size = count * width * dtype.itemsize
    if (view.get("byteOffset", 0) + start) % dtype.itemsize or start + size > len(payload):
        raise GlbError(f"accessors[{index}] is misaligned or longer than its buffer view")
    values = np.frombuffer(payload, dtype=dtype, count=count * width, offset=start)
    values = values.reshape(count, width) if width > 1 else values.copy()
    return values.astype(np.float32 if dtype.kind == "f" else np.uint32)
