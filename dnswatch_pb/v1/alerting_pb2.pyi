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

class WebhookCondition(_message.Message):
    __slots__ = ("type", "message")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class WebhookConfigItem(_message.Message):
    __slots__ = ("name", "value", "value_from_kind", "value_from_name", "value_from_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FROM_KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FROM_NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FROM_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    value_from_kind: str
    value_from_name: str
    value_from_key: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., value_from_kind: _Optional[str] = ..., value_from_name: _Optional[str] = ..., value_from_key: _Optional[str] = ...) -> None: ...

class SecurityEventWebhook(_message.Message):
    __slots__ = ("name", "api_version", "consumer", "state", "description", "query", "config", "delivers", "conditions", "last_delivery", "last_error", "last_error_time", "pending", "dead_letters", "delivered", "failed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    DELIVERS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_TIME_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    name: str
    api_version: str
    consumer: str
    state: str
    description: str
    query: str
    config: _containers.RepeatedCompositeFieldContainer[WebhookConfigItem]
    delivers: bool
    conditions: _containers.RepeatedCompositeFieldContainer[WebhookCondition]
    last_delivery: str
    last_error: str
    last_error_time: str
    pending: int
    dead_letters: int
    delivered: int
    failed: int
    def __init__(self, name: _Optional[str] = ..., api_version: _Optional[str] = ..., consumer: _Optional[str] = ..., state: _Optional[str] = ..., description: _Optional[str] = ..., query: _Optional[str] = ..., config: _Optional[_Iterable[_Union[WebhookConfigItem, _Mapping]]] = ..., delivers: _Optional[bool] = ..., conditions: _Optional[_Iterable[_Union[WebhookCondition, _Mapping]]] = ..., last_delivery: _Optional[str] = ..., last_error: _Optional[str] = ..., last_error_time: _Optional[str] = ..., pending: _Optional[int] = ..., dead_letters: _Optional[int] = ..., delivered: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class ListWebhooksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWebhooksResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[SecurityEventWebhook]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[SecurityEventWebhook, _Mapping]]] = ...) -> None: ...

class GetWebhookRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TestWebhookRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class TestWebhookResponse(_message.Message):
    __slots__ = ("delivered", "error", "http_status")
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    delivered: bool
    error: str
    http_status: int
    def __init__(self, delivered: _Optional[bool] = ..., error: _Optional[str] = ..., http_status: _Optional[int] = ...) -> None: ...
