import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeedContent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEED_CONTENT_UNSPECIFIED: _ClassVar[FeedContent]
    FEED_CONTENT_DOMAIN_NAME_SET: _ClassVar[FeedContent]
    FEED_CONTENT_IP_SET: _ClassVar[FeedContent]

class FeedMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEED_MODE_UNSPECIFIED: _ClassVar[FeedMode]
    FEED_MODE_ENABLED: _ClassVar[FeedMode]
    FEED_MODE_DISABLED: _ClassVar[FeedMode]
FEED_CONTENT_UNSPECIFIED: FeedContent
FEED_CONTENT_DOMAIN_NAME_SET: FeedContent
FEED_CONTENT_IP_SET: FeedContent
FEED_MODE_UNSPECIFIED: FeedMode
FEED_MODE_ENABLED: FeedMode
FEED_MODE_DISABLED: FeedMode

class ErrorCondition(_message.Message):
    __slots__ = ("type", "message", "count", "last_time")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_TIME_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    count: int
    last_time: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., count: _Optional[int] = ..., last_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FeedStatus(_message.Message):
    __slots__ = ("last_successful_sync", "error_conditions", "entries", "rejected_lines", "sha256", "version", "rejected_samples")
    LAST_SUCCESSFUL_SYNC_FIELD_NUMBER: _ClassVar[int]
    ERROR_CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_LINES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REJECTED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    last_successful_sync: _timestamp_pb2.Timestamp
    error_conditions: _containers.RepeatedCompositeFieldContainer[ErrorCondition]
    entries: int
    rejected_lines: int
    sha256: str
    version: int
    rejected_samples: _containers.RepeatedCompositeFieldContainer[RejectedSample]
    def __init__(self, last_successful_sync: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_conditions: _Optional[_Iterable[_Union[ErrorCondition, _Mapping]]] = ..., entries: _Optional[int] = ..., rejected_lines: _Optional[int] = ..., sha256: _Optional[str] = ..., version: _Optional[int] = ..., rejected_samples: _Optional[_Iterable[_Union[RejectedSample, _Mapping]]] = ...) -> None: ...

class RejectedSample(_message.Message):
    __slots__ = ("line", "text", "reason")
    LINE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    line: int
    text: str
    reason: str
    def __init__(self, line: _Optional[int] = ..., text: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RefusedManifest(_message.Message):
    __slots__ = ("origin", "name", "message")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    name: str
    message: str
    def __init__(self, origin: _Optional[str] = ..., name: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Feed(_message.Message):
    __slots__ = ("name", "content", "mode", "description", "url", "period", "format", "match_subdomains", "status", "push", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MATCH_SUBDOMAINS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: FeedContent
    mode: FeedMode
    description: str
    url: str
    period: _duration_pb2.Duration
    format: str
    match_subdomains: bool
    status: FeedStatus
    push: bool
    source: str
    def __init__(self, name: _Optional[str] = ..., content: _Optional[_Union[FeedContent, str]] = ..., mode: _Optional[_Union[FeedMode, str]] = ..., description: _Optional[str] = ..., url: _Optional[str] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., format: _Optional[str] = ..., match_subdomains: _Optional[bool] = ..., status: _Optional[_Union[FeedStatus, _Mapping]] = ..., push: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class ListFeedsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFeedsResponse(_message.Message):
    __slots__ = ("feeds", "refused")
    FEEDS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    feeds: _containers.RepeatedCompositeFieldContainer[Feed]
    refused: _containers.RepeatedCompositeFieldContainer[RefusedManifest]
    def __init__(self, feeds: _Optional[_Iterable[_Union[Feed, _Mapping]]] = ..., refused: _Optional[_Iterable[_Union[RefusedManifest, _Mapping]]] = ...) -> None: ...

class GetFeedRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetFeedResponse(_message.Message):
    __slots__ = ("feed",)
    FEED_FIELD_NUMBER: _ClassVar[int]
    feed: Feed
    def __init__(self, feed: _Optional[_Union[Feed, _Mapping]] = ...) -> None: ...

class SyncFeedRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class SyncFeedResponse(_message.Message):
    __slots__ = ("feed", "outcome", "message")
    FEED_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    feed: Feed
    outcome: str
    message: str
    def __init__(self, feed: _Optional[_Union[Feed, _Mapping]] = ..., outcome: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class PushFeedRequest(_message.Message):
    __slots__ = ("name", "body", "format")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    name: str
    body: bytes
    format: str
    def __init__(self, name: _Optional[str] = ..., body: _Optional[bytes] = ..., format: _Optional[str] = ...) -> None: ...

class PushFeedResponse(_message.Message):
    __slots__ = ("feed", "outcome")
    FEED_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    feed: Feed
    outcome: str
    def __init__(self, feed: _Optional[_Union[Feed, _Mapping]] = ..., outcome: _Optional[str] = ...) -> None: ...
