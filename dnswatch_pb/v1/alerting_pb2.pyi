from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExceptionCondition(_message.Message):
    __slots__ = ("type", "message")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class AlertException(_message.Message):
    __slots__ = ("name", "description", "selector", "start_time", "end_time", "period", "active", "ends_at", "error_conditions", "excepted_events")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    EXCEPTED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    selector: str
    start_time: str
    end_time: str
    period: str
    active: bool
    ends_at: str
    error_conditions: _containers.RepeatedCompositeFieldContainer[ExceptionCondition]
    excepted_events: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., selector: _Optional[str] = ..., start_time: _Optional[str] = ..., end_time: _Optional[str] = ..., period: _Optional[str] = ..., active: _Optional[bool] = ..., ends_at: _Optional[str] = ..., error_conditions: _Optional[_Iterable[_Union[ExceptionCondition, _Mapping]]] = ..., excepted_events: _Optional[int] = ...) -> None: ...

class ListAlertExceptionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAlertExceptionsResponse(_message.Message):
    __slots__ = ("exceptions",)
    EXCEPTIONS_FIELD_NUMBER: _ClassVar[int]
    exceptions: _containers.RepeatedCompositeFieldContainer[AlertException]
    def __init__(self, exceptions: _Optional[_Iterable[_Union[AlertException, _Mapping]]] = ...) -> None: ...

class GetAlertExceptionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...
