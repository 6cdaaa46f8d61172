import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecommendGarmentsRequest(_message.Message):
    __slots__ = ("user_id", "k", "categories", "include_seen", "body_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SEEN_FIELD_NUMBER: _ClassVar[int]
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    k: int
    categories: _containers.RepeatedScalarFieldContainer[_common_pb2.GarmentCategory]
    include_seen: bool
    body_id: str
    def __init__(self, user_id: _Optional[str] = ..., k: _Optional[int] = ..., categories: _Optional[_Iterable[_Union[_common_pb2.GarmentCategory, str]]] = ..., include_seen: _Optional[bool] = ..., body_id: _Optional[str] = ...) -> None: ...

class RecommendGarmentsResponse(_message.Message):
    __slots__ = ("garments", "cold_start", "history_size")
    GARMENTS_FIELD_NUMBER: _ClassVar[int]
    COLD_START_FIELD_NUMBER: _ClassVar[int]
    HISTORY_SIZE_FIELD_NUMBER: _ClassVar[int]
    garments: _containers.RepeatedCompositeFieldContainer[ScoredGarment]
    cold_start: bool
    history_size: int
    def __init__(self, garments: _Optional[_Iterable[_Union[ScoredGarment, _Mapping]]] = ..., cold_start: _Optional[bool] = ..., history_size: _Optional[int] = ...) -> None: ...

class RecommendOutfitsRequest(_message.Message):
    __slots__ = ("user_id", "k", "body_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    k: int
    body_id: str
    def __init__(self, user_id: _Optional[str] = ..., k: _Optional[int] = ..., body_id: _Optional[str] = ...) -> None: ...

class RecommendOutfitsResponse(_message.Message):
    __slots__ = ("outfits", "cold_start")
    OUTFITS_FIELD_NUMBER: _ClassVar[int]
    COLD_START_FIELD_NUMBER: _ClassVar[int]
    outfits: _containers.RepeatedCompositeFieldContainer[Outfit]
    cold_start: bool
    def __init__(self, outfits: _Optional[_Iterable[_Union[Outfit, _Mapping]]] = ..., cold_start: _Optional[bool] = ...) -> None: ...

class CompleteOutfitRequest(_message.Message):
    __slots__ = ("garment_ids", "k", "user_id")
    GARMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    garment_ids: _containers.RepeatedScalarFieldContainer[str]
    k: int
    user_id: str
    def __init__(self, garment_ids: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., user_id: _Optional[str] = ...) -> None: ...

class CompleteOutfitResponse(_message.Message):
    __slots__ = ("outfits",)
    OUTFITS_FIELD_NUMBER: _ClassVar[int]
    outfits: _containers.RepeatedCompositeFieldContainer[Outfit]
    def __init__(self, outfits: _Optional[_Iterable[_Union[Outfit, _Mapping]]] = ...) -> None: ...

class SimilarGarmentsRequest(_message.Message):
    __slots__ = ("garment_id", "k")
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    garment_id: str
    k: int
    def __init__(self, garment_id: _Optional[str] = ..., k: _Optional[int] = ...) -> None: ...

class SimilarGarmentsResponse(_message.Message):
    __slots__ = ("garments",)
    GARMENTS_FIELD_NUMBER: _ClassVar[int]
    garments: _containers.RepeatedCompositeFieldContainer[ScoredGarment]
    def __init__(self, garments: _Optional[_Iterable[_Union[ScoredGarment, _Mapping]]] = ...) -> None: ...

class RecordInteractionsRequest(_message.Message):
    __slots__ = ("interactions",)
    INTERACTIONS_FIELD_NUMBER: _ClassVar[int]
    interactions: _containers.RepeatedCompositeFieldContainer[Interaction]
    def __init__(self, interactions: _Optional[_Iterable[_Union[Interaction, _Mapping]]] = ...) -> None: ...

class RecordInteractionsResponse(_message.Message):
    __slots__ = ("event_ids",)
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class DeleteUserResponse(_message.Message):
    __slots__ = ("event_id",)
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    def __init__(self, event_id: _Optional[str] = ...) -> None: ...

class ScoredGarment(_message.Message):
    __slots__ = ("garment_id", "score", "category", "advised_size", "fit_probability", "size_offset")
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    ADVISED_SIZE_FIELD_NUMBER: _ClassVar[int]
    FIT_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    SIZE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    garment_id: str
    score: float
    category: _common_pb2.GarmentCategory
    advised_size: str
    fit_probability: float
    size_offset: int
    def __init__(self, garment_id: _Optional[str] = ..., score: _Optional[float] = ..., category: _Optional[_Union[_common_pb2.GarmentCategory, str]] = ..., advised_size: _Optional[str] = ..., fit_probability: _Optional[float] = ..., size_offset: _Optional[int] = ...) -> None: ...

class Outfit(_message.Message):
    __slots__ = ("garments", "score")
    GARMENTS_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    garments: _containers.RepeatedCompositeFieldContainer[ScoredGarment]
    score: float
    def __init__(self, garments: _Optional[_Iterable[_Union[ScoredGarment, _Mapping]]] = ..., score: _Optional[float] = ...) -> None: ...

class Interaction(_message.Message):
    __slots__ = ("user_id", "garment_id", "type", "occurred_at", "session_id", "size", "return_reason", "body_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GARMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    RETURN_REASON_FIELD_NUMBER: _ClassVar[int]
    BODY_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    garment_id: str
    type: _common_pb2.InteractionType
    occurred_at: _timestamp_pb2.Timestamp
    session_id: str
    size: str
    return_reason: _common_pb2.ReturnReason
    body_id: str
    def __init__(self, user_id: _Optional[str] = ..., garment_id: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.InteractionType, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_id: _Optional[str] = ..., size: _Optional[str] = ..., return_reason: _Optional[_Union[_common_pb2.ReturnReason, str]] = ..., body_id: _Optional[str] = ...) -> None: ...
