import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InteractionRecorded(_message.Message):
    __slots__ = ("event_id", "occurred_at", "user_id", "garment_id", "type", "session_id", "size", "return_reason", "body_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    RETURN_REASON_FIELD_NUMBER: _ClassVar[int]
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    user_id: str
    garment_id: str
    type: _common_pb2.InteractionType
    session_id: str
    size: str
    return_reason: _common_pb2.ReturnReason
    body_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user_id: _Optional[str] = ..., garment_id: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.InteractionType, str]] = ..., session_id: _Optional[str] = ..., size: _Optional[str] = ..., return_reason: _Optional[_Union[_common_pb2.ReturnReason, str]] = ..., body_id: _Optional[str] = ...) -> None: ...

class GarmentRegistered(_message.Message):
    __slots__ = ("event_id", "occurred_at", "garment_id", "category", "name", "content_latent", "price", "size_chart_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LATENT_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    SIZE_CHART_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    garment_id: str
    category: _common_pb2.GarmentCategory
    name: str
    content_latent: _containers.RepeatedScalarFieldContainer[float]
    price: _common_pb2.Money
    size_chart_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., garment_id: _Optional[str] = ..., category: _Optional[_Union[_common_pb2.GarmentCategory, str]] = ..., name: _Optional[str] = ..., content_latent: _Optional[_Iterable[float]] = ..., price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., size_chart_id: _Optional[str] = ...) -> None: ...

class BodyUpdated(_message.Message):
    __slots__ = ("event_id", "occurred_at", "body_id", "sex", "body_latent", "fit_profile")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    BODY_LATENT_FIELD_NUMBER: _ClassVar[int]
    FIT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    body_id: str
    sex: _common_pb2.Sex
    body_latent: _containers.RepeatedScalarFieldContainer[float]
    fit_profile: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChartFit]
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., body_id: _Optional[str] = ..., sex: _Optional[_Union[_common_pb2.Sex, str]] = ..., body_latent: _Optional[_Iterable[float]] = ..., fit_profile: _Optional[_Iterable[_Union[_common_pb2.ChartFit, _Mapping]]] = ...) -> None: ...

class BodyDeleted(_message.Message):
    __slots__ = ("event_id", "occurred_at", "body_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    body_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., body_id: _Optional[str] = ...) -> None: ...

class UserDeleted(_message.Message):
    __slots__ = ("event_id", "occurred_at", "user_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    user_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user_id: _Optional[str] = ...) -> None: ...
