"""Message bodies arrive exactly as sent: binary, large, non-ASCII, empty."""

from __future__ import annotations

import os

from kombu import Connection
from kombu.testing.fixtures import collect, declared

__all__ = ("TestTransportBodies",)

#: Text in several scripts, with characters outside the Basic Multilingual Plane.
NON_ASCII = "héllo wörld, ǅ Ωμέγα, Привет, 日本語, مرحبا, 🐇🥕, \u00a0\u2028end"


class TestTransportBodies:
    """Bodies and headers are not altered by the store."""

    def test_binary_body(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        payload = bytes(range(256)) * 4
        producer.publish(payload, content_type="application/data", content_encoding="binary")
        ((body, _),) = collect(kombu_connection, queue, 1)
        assert body == payload

    def test_non_ascii_text_body_and_headers(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        producer.publish({"text": NON_ASCII}, headers={"note": NON_ASCII})
        producer.publish(NON_ASCII,
                         content_type="text/plain", content_encoding="utf-8")
        got = collect(kombu_connection, queue, 2)
        assert [b for b, _ in got] == [{"text": NON_ASCII}, NON_ASCII]
        assert got[0][1].headers["note"] == NON_ASCII

    def test_large_binary_body(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        payload = os.urandom(1024 * 1024)
        producer.publish(payload, content_type="application/data", content_encoding="binary")
        ((body, _),) = collect(kombu_connection, queue, 1)
        assert len(body) == len(payload), f"a 1 MiB body arrived as {len(body)} bytes"
        assert body == payload

    def test_large_text_body(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        payload = {"text": ("é" + "x" * 1023) * 1024}
        producer.publish(payload)
        ((body, _),) = collect(kombu_connection, queue, 1)
        assert body == payload

    def test_empty_body(self, kombu_connection: Connection) -> None:
        queue, producer = declared(kombu_connection)
        producer.publish(b"", content_type="application/data", content_encoding="binary")
        ((body, _),) = collect(kombu_connection, queue, 1)
        assert body == b""
