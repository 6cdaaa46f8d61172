from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEX_UNSPECIFIED: _ClassVar[Sex]
    SEX_FEMALE: _ClassVar[Sex]
    SEX_MALE: _ClassVar[Sex]

class GarmentCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GARMENT_CATEGORY_UNSPECIFIED: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_T_SHIRT_TOP: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_TROUSER: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_PULLOVER: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_DRESS: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_COAT: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_SANDAL: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_SHIRT: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_SNEAKER: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_BAG: _ClassVar[GarmentCategory]
    GARMENT_CATEGORY_ANKLE_BOOT: _ClassVar[GarmentCategory]

class Generator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENERATOR_UNSPECIFIED: _ClassVar[Generator]
    GENERATOR_VAE: _ClassVar[Generator]
    GENERATOR_GAN: _ClassVar[Generator]

class InteractionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERACTION_TYPE_UNSPECIFIED: _ClassVar[InteractionType]
    INTERACTION_TYPE_VIEW: _ClassVar[InteractionType]
    INTERACTION_TYPE_TRY_ON: _ClassVar[InteractionType]
    INTERACTION_TYPE_ADD_TO_CART: _ClassVar[InteractionType]
    INTERACTION_TYPE_PURCHASE: _ClassVar[InteractionType]
    INTERACTION_TYPE_RETURN: _ClassVar[InteractionType]

class ReturnReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETURN_REASON_UNSPECIFIED: _ClassVar[ReturnReason]
    RETURN_REASON_TOO_SMALL: _ClassVar[ReturnReason]
    RETURN_REASON_TOO_LARGE: _ClassVar[ReturnReason]
    RETURN_REASON_OTHER: _ClassVar[ReturnReason]
SEX_UNSPECIFIED: Sex
SEX_FEMALE: Sex
SEX_MALE: Sex
GARMENT_CATEGORY_UNSPECIFIED: GarmentCategory
GARMENT_CATEGORY_T_SHIRT_TOP: GarmentCategory
GARMENT_CATEGORY_TROUSER: GarmentCategory
GARMENT_CATEGORY_PULLOVER: GarmentCategory
GARMENT_CATEGORY_DRESS: GarmentCategory
GARMENT_CATEGORY_COAT: GarmentCategory
GARMENT_CATEGORY_SANDAL: GarmentCategory
GARMENT_CATEGORY_SHIRT: GarmentCategory
GARMENT_CATEGORY_SNEAKER: GarmentCategory
GARMENT_CATEGORY_BAG: GarmentCategory
GARMENT_CATEGORY_ANKLE_BOOT: GarmentCategory
GENERATOR_UNSPECIFIED: Generator
GENERATOR_VAE: Generator
GENERATOR_GAN: Generator
INTERACTION_TYPE_UNSPECIFIED: InteractionType
INTERACTION_TYPE_VIEW: InteractionType
INTERACTION_TYPE_TRY_ON: InteractionType
INTERACTION_TYPE_ADD_TO_CART: InteractionType
INTERACTION_TYPE_PURCHASE: InteractionType
INTERACTION_TYPE_RETURN: InteractionType
RETURN_REASON_UNSPECIFIED: ReturnReason
RETURN_REASON_TOO_SMALL: ReturnReason
RETURN_REASON_TOO_LARGE: ReturnReason
RETURN_REASON_OTHER: ReturnReason

class MeasurementValue(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class MeasurementEstimate(_message.Message):
    __slots__ = ("name", "unit", "value", "stddev", "lower_90", "upper_90", "observed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STDDEV_FIELD_NUMBER: _ClassVar[int]
    LOWER_90_FIELD_NUMBER: _ClassVar[int]
    UPPER_90_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    name: str
    unit: str
    value: float
    stddev: float
    lower_90: float
    upper_90: float
    observed: bool
    def __init__(self, name: _Optional[str] = ..., unit: _Optional[str] = ..., value: _Optional[float] = ..., stddev: _Optional[float] = ..., lower_90: _Optional[float] = ..., upper_90: _Optional[float] = ..., observed: _Optional[bool] = ...) -> None: ...

class SizeChart(_message.Message):
    __slots__ = ("chart_id", "sizes")
    CHART_ID_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    chart_id: str
    sizes: _containers.RepeatedCompositeFieldContainer[SizeChartSize]
    def __init__(self, chart_id: _Optional[str] = ..., sizes: _Optional[_Iterable[_Union[SizeChartSize, _Mapping]]] = ...) -> None: ...

class SizeChartSize(_message.Message):
    __slots__ = ("label", "ranges", "garment_measurements")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RANGES_FIELD_NUMBER: _ClassVar[int]
    GARMENT_MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    label: str
    ranges: _containers.RepeatedCompositeFieldContainer[MeasurementRange]
    garment_measurements: _containers.RepeatedCompositeFieldContainer[MeasurementValue]
    def __init__(self, label: _Optional[str] = ..., ranges: _Optional[_Iterable[_Union[MeasurementRange, _Mapping]]] = ..., garment_measurements: _Optional[_Iterable[_Union[MeasurementValue, _Mapping]]] = ...) -> None: ...

class MeasurementRange(_message.Message):
    __slots__ = ("measurement", "min", "max")
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    measurement: str
    min: float
    max: float
    def __init__(self, measurement: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class Keypoint(_message.Message):
    __slots__ = ("name", "x", "y")
    NAME_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    name: str
    x: float
    y: float
    def __init__(self, name: _Optional[str] = ..., x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class Keypoint3D(_message.Message):
    __slots__ = ("name", "x_mm", "y_mm", "z_mm")
    NAME_FIELD_NUMBER: _ClassVar[int]
    X_MM_FIELD_NUMBER: _ClassVar[int]
    Y_MM_FIELD_NUMBER: _ClassVar[int]
    Z_MM_FIELD_NUMBER: _ClassVar[int]
    name: str
    x_mm: float
    y_mm: float
    z_mm: float
    def __init__(self, name: _Optional[str] = ..., x_mm: _Optional[float] = ..., y_mm: _Optional[float] = ..., z_mm: _Optional[float] = ...) -> None: ...

class Money(_message.Message):
    __slots__ = ("currency_code", "amount_minor")
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    currency_code: str
    amount_minor: int
    def __init__(self, currency_code: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class ChartFit(_message.Message):
    __slots__ = ("chart_id", "size_labels", "probabilities", "recommended_size")
    CHART_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_LABELS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_SIZE_FIELD_NUMBER: _ClassVar[int]
    chart_id: str
    size_labels: _containers.RepeatedScalarFieldContainer[str]
    probabilities: _containers.RepeatedScalarFieldContainer[float]
    recommended_size: str
    def __init__(self, chart_id: _Optional[str] = ..., size_labels: _Optional[_Iterable[str]] = ..., probabilities: _Optional[_Iterable[float]] = ..., recommended_size: _Optional[str] = ...) -> None: ...
