from dnswatch_pb.v1 import feeds_pb2 as _feeds_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SetEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SET_ENCODING_UNSPECIFIED: _ClassVar[SetEncoding]
    SET_ENCODING_GAPS_ZLIB: _ClassVar[SetEncoding]
    SET_ENCODING_LINES: _ClassVar[SetEncoding]
SET_ENCODING_UNSPECIFIED: SetEncoding
SET_ENCODING_GAPS_ZLIB: SetEncoding
SET_ENCODING_LINES: SetEncoding

class SubscribeRequest(_message.Message):
    __slots__ = ("node", "have")
    class HaveEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_FIELD_NUMBER: _ClassVar[int]
    HAVE_FIELD_NUMBER: _ClassVar[int]
    node: str
    have: _containers.ScalarMap[str, int]
    def __init__(self, node: _Optional[str] = ..., have: _Optional[_Mapping[str, int]] = ...) -> None: ...

class FeedSnapshot(_message.Message):
    __slots__ = ("name", "content", "version", "sha256", "encoding", "payload", "entries", "digest", "more", "labels", "severity")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: _feeds_pb2.FeedContent
    version: int
    sha256: str
    encoding: SetEncoding
    payload: bytes
    entries: int
    digest: int
    more: bool
    labels: _containers.ScalarMap[str, str]
    severity: int
    def __init__(self, name: _Optional[str] = ..., content: _Optional[_Union[_feeds_pb2.FeedContent, str]] = ..., version: _Optional[int] = ..., sha256: _Optional[str] = ..., encoding: _Optional[_Union[SetEncoding, str]] = ..., payload: _Optional[bytes] = ..., entries: _Optional[int] = ..., digest: _Optional[int] = ..., more: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., severity: _Optional[int] = ...) -> None: ...

class FeedDelta(_message.Message):
    __slots__ = ("name", "content", "from_version", "to_version", "sha256", "encoding", "added", "removed", "entries", "digest", "labels", "severity")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: _feeds_pb2.FeedContent
    from_version: int
    to_version: int
    sha256: str
    encoding: SetEncoding
    added: bytes
    removed: bytes
    entries: int
    digest: int
    labels: _containers.ScalarMap[str, str]
    severity: int
    def __init__(self, name: _Optional[str] = ..., content: _Optional[_Union[_feeds_pb2.FeedContent, str]] = ..., from_version: _Optional[int] = ..., to_version: _Optional[int] = ..., sha256: _Optional[str] = ..., encoding: _Optional[_Union[SetEncoding, str]] = ..., added: _Optional[bytes] = ..., removed: _Optional[bytes] = ..., entries: _Optional[int] = ..., digest: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., severity: _Optional[int] = ...) -> None: ...

class FeedRemoved(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Synced(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FeedUpdate(_message.Message):
    __slots__ = ("snapshot", "delta", "removed", "synced")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    SYNCED_FIELD_NUMBER: _ClassVar[int]
    snapshot: FeedSnapshot
    delta: FeedDelta
    removed: FeedRemoved
    synced: Synced
    def __init__(self, snapshot: _Optional[_Union[FeedSnapshot, _Mapping]] = ..., delta: _Optional[_Union[FeedDelta, _Mapping]] = ..., removed: _Optional[_Union[FeedRemoved, _Mapping]] = ..., synced: _Optional[_Union[Synced, _Mapping]] = ...) -> None: ...
