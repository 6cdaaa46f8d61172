import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateBodyRequest(_message.Message):
    __slots__ = ("measurements", "sex")
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    measurements: _containers.RepeatedCompositeFieldContainer[_common_pb2.MeasurementValue]
    sex: _common_pb2.Sex
    def __init__(self, measurements: _Optional[_Iterable[_Union[_common_pb2.MeasurementValue, _Mapping]]] = ..., sex: _Optional[_Union[_common_pb2.Sex, str]] = ...) -> None: ...

class CreateBodyResponse(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: Body
    def __init__(self, body: _Optional[_Union[Body, _Mapping]] = ...) -> None: ...

class GetBodyRequest(_message.Message):
    __slots__ = ("body_id",)
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    def __init__(self, body_id: _Optional[str] = ...) -> None: ...

class GetBodyResponse(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: Body
    def __init__(self, body: _Optional[_Union[Body, _Mapping]] = ...) -> None: ...

class DeleteBodyRequest(_message.Message):
    __slots__ = ("body_id",)
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    def __init__(self, body_id: _Optional[str] = ...) -> None: ...

class DeleteBodyResponse(_message.Message):
    __slots__ = ("body_id",)
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    def __init__(self, body_id: _Optional[str] = ...) -> None: ...

class SampleBodiesRequest(_message.Message):
    __slots__ = ("count", "seed", "sex", "generator")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    count: int
    seed: int
    sex: _common_pb2.Sex
    generator: _common_pb2.Generator
    def __init__(self, count: _Optional[int] = ..., seed: _Optional[int] = ..., sex: _Optional[_Union[_common_pb2.Sex, str]] = ..., generator: _Optional[_Union[_common_pb2.Generator, str]] = ...) -> None: ...

class SampleBodiesResponse(_message.Message):
    __slots__ = ("index", "body")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    index: int
    body: Body
    def __init__(self, index: _Optional[int] = ..., body: _Optional[_Union[Body, _Mapping]] = ...) -> None: ...

class AdviseSizeRequest(_message.Message):
    __slots__ = ("body_id", "size_chart")
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_CHART_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    size_chart: _common_pb2.SizeChart
    def __init__(self, body_id: _Optional[str] = ..., size_chart: _Optional[_Union[_common_pb2.SizeChart, _Mapping]] = ...) -> None: ...

class AdviseSizeResponse(_message.Message):
    __slots__ = ("recommended_size", "fits", "deciding_measurement", "explanation", "between_sizes", "pulls")
    RECOMMENDED_SIZE_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    DECIDING_MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    BETWEEN_SIZES_FIELD_NUMBER: _ClassVar[int]
    PULLS_FIELD_NUMBER: _ClassVar[int]
    recommended_size: str
    fits: _containers.RepeatedCompositeFieldContainer[SizeFit]
    deciding_measurement: str
    explanation: str
    between_sizes: _containers.RepeatedScalarFieldContainer[str]
    pulls: _containers.RepeatedCompositeFieldContainer[MeasurementPull]
    def __init__(self, recommended_size: _Optional[str] = ..., fits: _Optional[_Iterable[_Union[SizeFit, _Mapping]]] = ..., deciding_measurement: _Optional[str] = ..., explanation: _Optional[str] = ..., between_sizes: _Optional[_Iterable[str]] = ..., pulls: _Optional[_Iterable[_Union[MeasurementPull, _Mapping]]] = ...) -> None: ...

class RenderSilhouetteRequest(_message.Message):
    __slots__ = ("body_id", "width", "height")
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    width: int
    height: int
    def __init__(self, body_id: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class RenderSilhouetteResponse(_message.Message):
    __slots__ = ("png", "keypoints", "mm_per_pixel")
    PNG_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    MM_PER_PIXEL_FIELD_NUMBER: _ClassVar[int]
    png: bytes
    keypoints: _containers.RepeatedCompositeFieldContainer[_common_pb2.Keypoint]
    mm_per_pixel: float
    def __init__(self, png: _Optional[bytes] = ..., keypoints: _Optional[_Iterable[_Union[_common_pb2.Keypoint, _Mapping]]] = ..., mm_per_pixel: _Optional[float] = ...) -> None: ...

class GetBodyMeshRequest(_message.Message):
    __slots__ = ("body_id",)
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    def __init__(self, body_id: _Optional[str] = ...) -> None: ...

class GetBodyMeshResponse(_message.Message):
    __slots__ = ("glb", "keypoints", "mesh_measurements", "vertex_count", "triangle_count")
    GLB_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    MESH_MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    VERTEX_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRIANGLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    glb: bytes
    keypoints: _containers.RepeatedCompositeFieldContainer[_common_pb2.Keypoint3D]
    mesh_measurements: _containers.RepeatedCompositeFieldContainer[_common_pb2.MeasurementValue]
    vertex_count: int
    triangle_count: int
    def __init__(self, glb: _Optional[bytes] = ..., keypoints: _Optional[_Iterable[_Union[_common_pb2.Keypoint3D, _Mapping]]] = ..., mesh_measurements: _Optional[_Iterable[_Union[_common_pb2.MeasurementValue, _Mapping]]] = ..., vertex_count: _Optional[int] = ..., triangle_count: _Optional[int] = ...) -> None: ...

class Body(_message.Message):
    __slots__ = ("body_id", "sex", "measurements", "create_time")
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    sex: _common_pb2.Sex
    measurements: _containers.RepeatedCompositeFieldContainer[_common_pb2.MeasurementEstimate]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, body_id: _Optional[str] = ..., sex: _Optional[_Union[_common_pb2.Sex, str]] = ..., measurements: _Optional[_Iterable[_Union[_common_pb2.MeasurementEstimate, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MeasurementPull(_message.Message):
    __slots__ = ("measurement", "size")
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    measurement: str
    size: str
    def __init__(self, measurement: _Optional[str] = ..., size: _Optional[str] = ...) -> None: ...

class SizeFit(_message.Message):
    __slots__ = ("label", "probability")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    label: str
    probability: float
    def __init__(self, label: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...
