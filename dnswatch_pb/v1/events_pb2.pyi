import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchCompression(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCH_COMPRESSION_NONE: _ClassVar[WatchCompression]
    WATCH_COMPRESSION_ZSTD: _ClassVar[WatchCompression]
WATCH_COMPRESSION_NONE: WatchCompression
WATCH_COMPRESSION_ZSTD: WatchCompression

class Event(_message.Message):
    __slots__ = ("id", "json", "excepted_by", "dismissed", "dismissed_by", "dismissed_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    EXCEPTED_BY_FIELD_NUMBER: _ClassVar[int]
    DISMISSED_FIELD_NUMBER: _ClassVar[int]
    DISMISSED_BY_FIELD_NUMBER: _ClassVar[int]
    DISMISSED_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    json: str
    excepted_by: str
    dismissed: bool
    dismissed_by: str
    dismissed_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., json: _Optional[str] = ..., excepted_by: _Optional[str] = ..., dismissed: _Optional[bool] = ..., dismissed_by: _Optional[str] = ..., dismissed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("batch_id", "node", "events")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    node: str
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, batch_id: _Optional[int] = ..., node: _Optional[str] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("batch_id", "inserted", "replaced")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    inserted: int
    replaced: int
    def __init__(self, batch_id: _Optional[int] = ..., inserted: _Optional[int] = ..., replaced: _Optional[int] = ...) -> None: ...

class EventFilter(_message.Message):
    __slots__ = ("namespace", "pod", "feed", "domain", "type", "host", "since", "until", "include_excepted", "include_dismissed", "dismissed_only")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    FEED_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EXCEPTED_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DISMISSED_FIELD_NUMBER: _ClassVar[int]
    DISMISSED_ONLY_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    pod: str
    feed: str
    domain: str
    type: str
    host: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    include_excepted: bool
    include_dismissed: bool
    dismissed_only: bool
    def __init__(self, namespace: _Optional[str] = ..., pod: _Optional[str] = ..., feed: _Optional[str] = ..., domain: _Optional[str] = ..., type: _Optional[str] = ..., host: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., include_excepted: _Optional[bool] = ..., include_dismissed: _Optional[bool] = ..., dismissed_only: _Optional[bool] = ...) -> None: ...

class DismissEventsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DismissEventsResponse(_message.Message):
    __slots__ = ("changed", "unknown")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    changed: _containers.RepeatedScalarFieldContainer[str]
    unknown: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, changed: _Optional[_Iterable[str]] = ..., unknown: _Optional[_Iterable[str]] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: EventFilter
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[EventFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("filter", "resume_token", "max_events", "compression")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    filter: EventFilter
    resume_token: str
    max_events: int
    compression: WatchCompression
    def __init__(self, filter: _Optional[_Union[EventFilter, _Mapping]] = ..., resume_token: _Optional[str] = ..., max_events: _Optional[int] = ..., compression: _Optional[_Union[WatchCompression, str]] = ...) -> None: ...

class EventWatchResponse(_message.Message):
    __slots__ = ("event", "resume_token", "events", "compressed_events")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    event: Event
    resume_token: str
    events: _containers.RepeatedCompositeFieldContainer[Event]
    compressed_events: bytes
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ..., resume_token: _Optional[str] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., compressed_events: _Optional[bytes] = ...) -> None: ...
