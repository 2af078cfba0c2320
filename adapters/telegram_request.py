"""python-telegram-bot's HTTP requests on aiohttp instead of httpx.

PTB lets a bot bring its own `BaseRequest`. This one keeps PTB's wire format (form-urlencoded
bodies, multipart when a file goes along) and its error mapping (a timeout is `TimedOut`, any
other transport failure `NetworkError`), and spends about half the CPU per request that httpx
and httpcore do here, which is what bounds a big push on one core. One small pool of keep-alive
connections is shared by replies and pushes; a request waits up to `pool_timeout` for a free one.
Responses are decoded with orjson when it is installed (`pip install 'quizbot[fast]'`).
"""
from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlencode

import aiohttp
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

try:  # optional: faster JSON decoding of every Bot API answer
    import orjson
except ImportError:  # pragma: no cover - depends on what is installed
    orjson = None

_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class AiohttpRequest(BaseRequest):
    """A `telegram.request.BaseRequest` on one `aiohttp.ClientSession` (created in `initialize`)."""

    __slots__ = ("_connections", "_timeouts", "_media_write_timeout", "_session", "_default")

    def __init__(self, connection_pool_size: int = 8, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0):
        self._connections = connection_pool_size
        self._timeouts = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._default = _timeout(read_timeout, write_timeout, connect_timeout, pool_timeout)

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts[0]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT},
                                                  skip_auto_headers=("Accept-Encoding",), auto_decompress=False,
                                                  cookie_jar=aiohttp.DummyCookieJar())

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict:
        if orjson is None:
            return BaseRequest.parse_json_payload(payload)
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            return BaseRequest.parse_json_payload(payload)  # lenient decoding and PTB's own error

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=BaseRequest.DEFAULT_NONE, write_timeout=BaseRequest.DEFAULT_NONE,
                         connect_timeout=BaseRequest.DEFAULT_NONE, pool_timeout=BaseRequest.DEFAULT_NONE,
                         ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None and request_data.contains_files else None
        given = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        if all(value is BaseRequest.DEFAULT_NONE for value in given) and not files:
            timeout = self._default
        else:
            defaults = list(self._timeouts)
            if files:
                defaults[1] = self._media_write_timeout
            timeout = _timeout(*(d if v is BaseRequest.DEFAULT_NONE else v for v, d in zip(given, defaults)))
        body, headers = _body(request_data, files)
        try:
            async with self._session.request(method, url, data=body, headers=headers, timeout=timeout) as response:
                return response.status, await response.read()
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as e:
            raise TimedOut from e
        except TelegramError:
            raise
        except aiohttp.ClientError as e:
            raise NetworkError(f"aiohttp.{type(e).__name__}: {_reason(e, url)}") from e


def _reason(error: aiohttp.ClientError, url: str) -> str:
    """What went wrong, in the words people know ("Connection refused"), never with the URL (it
    holds the token)."""
    cause = getattr(error, "os_error", None)
    number = getattr(cause, "errno", None)
    if isinstance(error, aiohttp.ClientConnectorError) and number:  # name look-ups have negative numbers
        return f"cannot connect to {error.host}:{error.port}: {os.strerror(number) if number > 0 else cause.strerror}"
    return str(error).replace(url, "<Bot API URL>")


def _timeout(read: float | None, write: float | None, connect: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    """aiohttp has no write timeout of its own: the whole request is capped at the sum of all four
    (so an upload the server stops reading ends); waiting for a pooled connection counts against
    `connect`, and `read` is the longest silence while the answer arrives."""
    parts = (read, write, connect, pool)
    total = None if any(part is None for part in parts) else sum(parts)
    waiting = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(total=total, connect=waiting, sock_connect=connect, sock_read=read)


def _body(request_data: RequestData | None, files: dict | None) -> tuple[Any, dict | None]:
    if request_data is None:
        return None, None
    fields = request_data.json_parameters
    if not files:
        return urlencode(fields).encode(), _FORM
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form, None
