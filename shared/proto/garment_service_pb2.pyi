import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TryOnView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRY_ON_VIEW_UNSPECIFIED: _ClassVar[TryOnView]
    TRY_ON_VIEW_FRONT: _ClassVar[TryOnView]
    TRY_ON_VIEW_BACK: _ClassVar[TryOnView]

class SizeChoice(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIZE_CHOICE_UNSPECIFIED: _ClassVar[SizeChoice]
    SIZE_CHOICE_REQUESTED: _ClassVar[SizeChoice]
    SIZE_CHOICE_BODY_SIZE: _ClassVar[SizeChoice]
    SIZE_CHOICE_NO_CHART: _ClassVar[SizeChoice]

class FitVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIT_VERDICT_UNSPECIFIED: _ClassVar[FitVerdict]
    FIT_VERDICT_TIGHT: _ClassVar[FitVerdict]
    FIT_VERDICT_FITTING: _ClassVar[FitVerdict]
    FIT_VERDICT_LOOSE: _ClassVar[FitVerdict]
    FIT_VERDICT_SHORT: _ClassVar[FitVerdict]
    FIT_VERDICT_LONG: _ClassVar[FitVerdict]
TRY_ON_VIEW_UNSPECIFIED: TryOnView
TRY_ON_VIEW_FRONT: TryOnView
TRY_ON_VIEW_BACK: TryOnView
SIZE_CHOICE_UNSPECIFIED: SizeChoice
SIZE_CHOICE_REQUESTED: SizeChoice
SIZE_CHOICE_BODY_SIZE: SizeChoice
SIZE_CHOICE_NO_CHART: SizeChoice
FIT_VERDICT_UNSPECIFIED: FitVerdict
FIT_VERDICT_TIGHT: FitVerdict
FIT_VERDICT_FITTING: FitVerdict
FIT_VERDICT_LOOSE: FitVerdict
FIT_VERDICT_SHORT: FitVerdict
FIT_VERDICT_LONG: FitVerdict

class GenerateGarmentsRequest(_message.Message):
    __slots__ = ("category", "count", "seed", "generator")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_FIELD_NUMBER: _ClassVar[int]
    category: _common_pb2.GarmentCategory
    count: int
    seed: int
    generator: _common_pb2.Generator
    def __init__(self, category: _Optional[_Union[_common_pb2.GarmentCategory, str]] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ..., generator: _Optional[_Union[_common_pb2.Generator, str]] = ...) -> None: ...

class GenerateGarmentsResponse(_message.Message):
    __slots__ = ("garments",)
    GARMENTS_FIELD_NUMBER: _ClassVar[int]
    garments: _containers.RepeatedCompositeFieldContainer[GeneratedGarment]
    def __init__(self, garments: _Optional[_Iterable[_Union[GeneratedGarment, _Mapping]]] = ...) -> None: ...

class EncodeGarmentRequest(_message.Message):
    __slots__ = ("image", "category")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    category: _common_pb2.GarmentCategory
    def __init__(self, image: _Optional[bytes] = ..., category: _Optional[_Union[_common_pb2.GarmentCategory, str]] = ...) -> None: ...

class EncodeGarmentResponse(_message.Message):
    __slots__ = ("latent", "category", "reconstruction_png")
    LATENT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    RECONSTRUCTION_PNG_FIELD_NUMBER: _ClassVar[int]
    latent: _containers.RepeatedScalarFieldContainer[float]
    category: _common_pb2.GarmentCategory
    reconstruction_png: bytes
    def __init__(self, latent: _Optional[_Iterable[float]] = ..., category: _Optional[_Union[_common_pb2.GarmentCategory, str]] = ..., reconstruction_png: _Optional[bytes] = ...) -> None: ...

class InterpolateGarmentsRequest(_message.Message):
    __slots__ = ("start", "end", "steps")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    start: GarmentRef
    end: GarmentRef
    steps: int
    def __init__(self, start: _Optional[_Union[GarmentRef, _Mapping]] = ..., end: _Optional[_Union[GarmentRef, _Mapping]] = ..., steps: _Optional[int] = ...) -> None: ...

class InterpolateGarmentsResponse(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[GeneratedGarment]
    def __init__(self, frames: _Optional[_Iterable[_Union[GeneratedGarment, _Mapping]]] = ...) -> None: ...

class RegisterGarmentRequest(_message.Message):
    __slots__ = ("image", "name", "category", "price", "size_chart")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_CHART_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    name: str
    category: _common_pb2.GarmentCategory
    price: _common_pb2.Money
    size_chart: _common_pb2.SizeChart
    def __init__(self, image: _Optional[bytes] = ..., name: _Optional[str] = ..., category: _Optional[_Union[_common_pb2.GarmentCategory, str]] = ..., price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., size_chart: _Optional[_Union[_common_pb2.SizeChart, _Mapping]] = ...) -> None: ...

class RegisterGarmentResponse(_message.Message):
    __slots__ = ("garment",)
    GARMENT_FIELD_NUMBER: _ClassVar[int]
    garment: Garment
    def __init__(self, garment: _Optional[_Union[Garment, _Mapping]] = ...) -> None: ...

class ImportGarmentsRequest(_message.Message):
    __slots__ = ("garment", "item_ref")
    GARMENT_FIELD_NUMBER: _ClassVar[int]
    ITEM_REF_FIELD_NUMBER: _ClassVar[int]
    garment: RegisterGarmentRequest
    item_ref: str
    def __init__(self, garment: _Optional[_Union[RegisterGarmentRequest, _Mapping]] = ..., item_ref: _Optional[str] = ...) -> None: ...

class ImportGarmentsResponse(_message.Message):
    __slots__ = ("results", "registered_count", "failed_count", "truncated")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ImportGarmentsResult]
    registered_count: int
    failed_count: int
    truncated: bool
    def __init__(self, results: _Optional[_Iterable[_Union[ImportGarmentsResult, _Mapping]]] = ..., registered_count: _Optional[int] = ..., failed_count: _Optional[int] = ..., truncated: _Optional[bool] = ...) -> None: ...

class GetGarmentRequest(_message.Message):
    __slots__ = ("garment_id",)
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    garment_id: str
    def __init__(self, garment_id: _Optional[str] = ...) -> None: ...

class GetGarmentResponse(_message.Message):
    __slots__ = ("garment",)
    GARMENT_FIELD_NUMBER: _ClassVar[int]
    garment: Garment
    def __init__(self, garment: _Optional[_Union[Garment, _Mapping]] = ...) -> None: ...

class GetGarmentImageRequest(_message.Message):
    __slots__ = ("garment_id", "max_side")
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    garment_id: str
    max_side: int
    def __init__(self, garment_id: _Optional[str] = ..., max_side: _Optional[int] = ...) -> None: ...

class GetGarmentImageResponse(_message.Message):
    __slots__ = ("image", "media_type", "width", "height", "original")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    media_type: str
    width: int
    height: int
    original: bool
    def __init__(self, image: _Optional[bytes] = ..., media_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., original: _Optional[bool] = ...) -> None: ...

class ListGarmentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "categories")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    categories: _containers.RepeatedScalarFieldContainer[_common_pb2.GarmentCategory]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., categories: _Optional[_Iterable[_Union[_common_pb2.GarmentCategory, str]]] = ...) -> None: ...

class ListGarmentsResponse(_message.Message):
    __slots__ = ("garments", "next_page_token")
    GARMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    garments: _containers.RepeatedCompositeFieldContainer[Garment]
    next_page_token: str
    def __init__(self, garments: _Optional[_Iterable[_Union[Garment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RenderTryOnRequest(_message.Message):
    __slots__ = ("body_id", "garment_ids", "width", "height", "garments", "view")
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    GARMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    GARMENTS_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    garment_ids: _containers.RepeatedScalarFieldContainer[str]
    width: int
    height: int
    garments: _containers.RepeatedCompositeFieldContainer[TryOnGarment]
    view: TryOnView
    def __init__(self, body_id: _Optional[str] = ..., garment_ids: _Optional[_Iterable[str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., garments: _Optional[_Iterable[_Union[TryOnGarment, _Mapping]]] = ..., view: _Optional[_Union[TryOnView, str]] = ...) -> None: ...

class RenderTryOnResponse(_message.Message):
    __slots__ = ("png", "fits")
    PNG_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    png: bytes
    fits: _containers.RepeatedCompositeFieldContainer[GarmentFit]
    def __init__(self, png: _Optional[bytes] = ..., fits: _Optional[_Iterable[_Union[GarmentFit, _Mapping]]] = ...) -> None: ...

class RenderTryOnModelRequest(_message.Message):
    __slots__ = ("body_id", "garments", "texture_size")
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    GARMENTS_FIELD_NUMBER: _ClassVar[int]
    TEXTURE_SIZE_FIELD_NUMBER: _ClassVar[int]
    body_id: str
    garments: _containers.RepeatedCompositeFieldContainer[TryOnGarment]
    texture_size: int
    def __init__(self, body_id: _Optional[str] = ..., garments: _Optional[_Iterable[_Union[TryOnGarment, _Mapping]]] = ..., texture_size: _Optional[int] = ...) -> None: ...

class RenderTryOnModelResponse(_message.Message):
    __slots__ = ("glb", "fits")
    GLB_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    glb: bytes
    fits: _containers.RepeatedCompositeFieldContainer[GarmentFit]
    def __init__(self, glb: _Optional[bytes] = ..., fits: _Optional[_Iterable[_Union[GarmentFit, _Mapping]]] = ...) -> None: ...

class Garment(_message.Message):
    __slots__ = ("garment_id", "name", "category", "price", "size_chart", "content_latent", "image_png", "create_time", "has_original_image")
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_CHART_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LATENT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_PNG_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    HAS_ORIGINAL_IMAGE_FIELD_NUMBER: _ClassVar[int]
    garment_id: str
    name: str
    category: _common_pb2.GarmentCategory
    price: _common_pb2.Money
    size_chart: _common_pb2.SizeChart
    content_latent: _containers.RepeatedScalarFieldContainer[float]
    image_png: bytes
    create_time: _timestamp_pb2.Timestamp
    has_original_image: bool
    def __init__(self, garment_id: _Optional[str] = ..., name: _Optional[str] = ..., category: _Optional[_Union[_common_pb2.GarmentCategory, str]] = ..., price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., size_chart: _Optional[_Union[_common_pb2.SizeChart, _Mapping]] = ..., content_latent: _Optional[_Iterable[float]] = ..., image_png: _Optional[bytes] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., has_original_image: _Optional[bool] = ...) -> None: ...

class ImportGarmentsResult(_message.Message):
    __slots__ = ("index", "item_ref", "garment_id", "error_code", "error_message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ITEM_REF_FIELD_NUMBER: _ClassVar[int]
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    index: int
    item_ref: str
    garment_id: str
    error_code: int
    error_message: str
    def __init__(self, index: _Optional[int] = ..., item_ref: _Optional[str] = ..., garment_id: _Optional[str] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class GeneratedGarment(_message.Message):
    __slots__ = ("png", "latent", "category")
    PNG_FIELD_NUMBER: _ClassVar[int]
    LATENT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    png: bytes
    latent: _containers.RepeatedScalarFieldContainer[float]
    category: _common_pb2.GarmentCategory
    def __init__(self, png: _Optional[bytes] = ..., latent: _Optional[_Iterable[float]] = ..., category: _Optional[_Union[_common_pb2.GarmentCategory, str]] = ...) -> None: ...

class GarmentRef(_message.Message):
    __slots__ = ("garment_id", "image")
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    garment_id: str
    image: bytes
    def __init__(self, garment_id: _Optional[str] = ..., image: _Optional[bytes] = ...) -> None: ...

class TryOnGarment(_message.Message):
    __slots__ = ("garment_id", "size_label")
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_LABEL_FIELD_NUMBER: _ClassVar[int]
    garment_id: str
    size_label: str
    def __init__(self, garment_id: _Optional[str] = ..., size_label: _Optional[str] = ...) -> None: ...

class GarmentFit(_message.Message):
    __slots__ = ("garment_id", "size_label", "size_choice", "measurements")
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_LABEL_FIELD_NUMBER: _ClassVar[int]
    SIZE_CHOICE_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    garment_id: str
    size_label: str
    size_choice: SizeChoice
    measurements: _containers.RepeatedCompositeFieldContainer[MeasurementFit]
    def __init__(self, garment_id: _Optional[str] = ..., size_label: _Optional[str] = ..., size_choice: _Optional[_Union[SizeChoice, str]] = ..., measurements: _Optional[_Iterable[_Union[MeasurementFit, _Mapping]]] = ...) -> None: ...

class MeasurementFit(_message.Message):
    __slots__ = ("measurement", "body_mm", "garment_mm", "ease_mm", "verdict")
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    BODY_MM_FIELD_NUMBER: _ClassVar[int]
    GARMENT_MM_FIELD_NUMBER: _ClassVar[int]
    EASE_MM_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    measurement: str
    body_mm: float
    garment_mm: float
    ease_mm: float
    verdict: FitVerdict
    def __init__(self, measurement: _Optional[str] = ..., body_mm: _Optional[float] = ..., garment_mm: _Optional[float] = ..., ease_mm: _Optional[float] = ..., verdict: _Optional[_Union[FitVerdict, str]] = ...) -> None: ...
