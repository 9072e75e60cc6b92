"""Errors stay catchable as the driver's, as kombu 5.x code catches them.

Where a transport raises its own, clearer error in place of the driver's
(a refused login, an unknown database or virtual host), the error is an
instance of both; the other driver errors come through as they are.
"""

from __future__ import annotations

import pickle

import pytest
from helpers.faultproxy import FaultProxy
from kombu import Connection, Queue
from kombu.exceptions import AccessRefused, OperationalError

redis = pytest.importorskip("redis", reason="kombu-redis needs redis-py")
amqp = pytest.importorskip("amqp", reason="kombu-pyamqp needs the amqp library")

REDIS = "127.0.0.1:6379"
AMQP = "127.0.0.1:5672"


def _connect(url: str, **kwargs: object) -> BaseException:
    conn = Connection(url, **kwargs)  # type: ignore[arg-type]
    try:
        with pytest.raises(Exception) as info:
            conn.ensure_connection(max_retries=0)
            conn.default_channel.client.ping()  # Redis connects on first command
    finally:
        conn.release()
    return info.value


# -- Redis --------------------------------------------------------------------
@pytest.mark.redis
@pytest.mark.parametrize("userinfo", ["dropin-nobody:wrong", ":wrong"])
def test_redis_refused_login_is_authentication_error(userinfo: str) -> None:
    error = _connect(f"redis://{userinfo}@{REDIS}/6")
    assert isinstance(error, redis.exceptions.AuthenticationError)
    assert isinstance(error, redis.exceptions.ConnectionError)
    assert isinstance(error, AccessRefused)
    assert "wrong" not in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)


@pytest.mark.redis
def test_redis_refused_login_is_not_retried() -> None:
    conn = Connection(f"redis://dropin-nobody:wrong@{REDIS}/6")
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            conn.ensure_connection(max_retries=5, interval_start=5)  # raised at once
    finally:
        conn.release()


@pytest.mark.redis
def test_redis_unknown_database_is_response_error() -> None:
    error = _connect(f"redis://{REDIS}/4000")
    assert isinstance(error, redis.exceptions.ResponseError)
    assert isinstance(error, ValueError)
    assert "4000" in str(error)


@pytest.mark.redis
def test_redis_refused_connection_is_connection_error() -> None:
    with FaultProxy(("127.0.0.1", 6379)) as proxy:
        proxy.refuse()
        error = _connect(proxy.url("redis", "/6"), connect_timeout=2)
    # ensure_connection() raises kombu's OperationalError, as kombu does, from
    # the driver's error.
    assert isinstance(error, OperationalError)
    assert isinstance(error.__cause__, redis.exceptions.ConnectionError)


@pytest.mark.redis
def test_redis_stalled_command_is_timeout_error() -> None:
    with FaultProxy(("127.0.0.1", 6379)) as proxy:
        conn = Connection(proxy.url("redis", "/6"),
                          transport_options={"socket_timeout": 0.5})
        try:
            client = conn.default_channel.client
            client.ping()
            proxy.stall()
            with pytest.raises(redis.exceptions.TimeoutError):
                client.ping()
        finally:
            proxy.forward()
            conn.release()


@pytest.mark.redis
def test_redis_wrong_type_is_response_error(qname: str) -> None:
    with Connection(f"redis://{REDIS}/6") as conn:
        client = conn.default_channel.client
        client.set(qname, "not a list")
        try:
            with pytest.raises(redis.exceptions.ResponseError):
                Queue(qname, routing_key=qname)(conn.default_channel).get()
        finally:
            client.delete(qname)


def test_get_redis_error_classes() -> None:
    from kombu.transport import redis as kombu_redis

    assert "get_redis_error_classes" in kombu_redis.__all__
    connection_errors, channel_errors = kombu_redis.get_redis_error_classes()
    for cls in (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.AuthenticationError, redis.exceptions.BusyLoadingError,
                OSError):
        assert issubclass(cls, connection_errors)
    for cls in (redis.exceptions.ResponseError, redis.exceptions.DataError,
                redis.exceptions.InvalidResponse):
        assert issubclass(cls, channel_errors)
    transport_errors = Connection("redis://").connection_errors
    assert all(issubclass(cls, connection_errors) for cls in transport_errors)
    assert kombu_redis.get_redis_ConnectionError() is redis.exceptions.ConnectionError


# -- RabbitMQ -----------------------------------------------------------------
@pytest.mark.rabbitmq
def test_amqp_refused_login_is_the_drivers_access_refused() -> None:
    error = _connect(f"amqp://guest:wrong-{id(object())}@{AMQP}//")
    assert isinstance(error, amqp.exceptions.AccessRefused)
    assert isinstance(error, AccessRefused)
    assert error.reply_code == 403  # type: ignore[attr-defined]
    assert "check the user name and password" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)


@pytest.mark.rabbitmq
def test_amqp_unknown_vhost_is_the_drivers_not_allowed() -> None:
    error = _connect(f"amqp://guest:guest@{AMQP}/dropin-no-such-vhost")
    assert isinstance(error, amqp.exceptions.NotAllowed)
    assert isinstance(error, amqp.exceptions.ConnectionError)
    assert isinstance(error, AccessRefused)
    assert "dropin-no-such-vhost" in str(error)


@pytest.mark.rabbitmq
def test_amqp_channel_errors_come_through(qname: str) -> None:
    with Connection(f"amqp://guest:guest@{AMQP}//") as conn:
        with pytest.raises(amqp.exceptions.NotFound):
            Queue(qname)(conn.channel()).queue_declare(passive=True)
        channel = conn.channel()
        queue = Queue(qname, durable=False, auto_delete=True)(channel)
        queue.declare()
        try:
            with pytest.raises(amqp.exceptions.PreconditionFailed):
                Queue(qname, durable=True)(conn.channel()).declare()
        finally:
            queue(conn.channel()).delete()
