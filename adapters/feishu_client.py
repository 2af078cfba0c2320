"""The Feishu Open API calls quizbot makes, through lark-oapi, paced and retried.

lark-oapi blocks (requests underneath, and even its `a…` methods fetch the tenant token
synchronously), so every call runs in a worker thread with `asyncio.to_thread`. Client-side
limits follow Feishu's: about 50 requests/s per app and 5/s per receiver (aiolimiter). Transient
failures are retried with tenacity: 429 and the rate-limit codes honour `x-ogw-ratelimit-reset`,
5xx, timeouts and network errors back off exponentially. "Bot not in chat" style answers raise
`bot.models.ChatUnreachable`.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass

import lark_oapi as lark
import requests
from aiolimiter import AsyncLimiter
from lark_oapi.api.contact.v3 import GetUserRequest
from lark_oapi.api.im.v1 import (CreateFileRequest, CreateFileRequestBody, CreateImageRequest,
                                 CreateImageRequestBody, CreateMessageRequest,
                                 CreateMessageRequestBody, GetChatRequest, GetMessageRequest,
                                 PatchMessageRequest, PatchMessageRequestBody, ReplyMessageRequest,
                                 ReplyMessageRequestBody)
from lark_oapi.core.exception import ObtainAccessTokenException
from lark_oapi.core.token.manager import TokenManager
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from bot.config import FeishuSettings
from bot.models import ChatUnreachable

log = logging.getLogger(__name__)

RATE_LIMITED = {99991400, 230020}            # app frequency limit; per-chat frequency limit
UNREACHABLE = {230002, 230013, 230053}       # bot not in the chat; user outside the app's range; user stopped the bot
TOKEN_INVALID = {99991661, 99991663, 99991668}
MAX_ATTEMPTS = 4
MAX_WAIT = 30.0
_BACK_OFF = wait_exponential(multiplier=0.5, max=8) + wait_random(0, 0.5)


class FeishuError(Exception):
    def __init__(self, code: int | None, msg: str, status: int | None = None):
        super().__init__(f"Feishu API error {code} (HTTP {status}): {msg}")
        self.code, self.status = code, status


class Transient(FeishuError):
    def __init__(self, code: int | None, msg: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(code, msg, status)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ChatInfo:
    owner_id: str
    managers: frozenset[str]
    mode: str  # "p2p", "group" or "topic"


def _header(headers: dict | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _wait(state) -> float:
    error = state.outcome.exception()
    if isinstance(error, Transient) and error.retry_after is not None:
        return min(max(error.retry_after, 0.0), MAX_WAIT)
    return _BACK_OFF(state)


class FeishuApi:
    def __init__(self, settings: FeishuSettings, per_app: float = 50, per_receiver: float = 5):
        self.app_id = settings.app_id
        self.client = (lark.Client.builder().app_id(settings.app_id).app_secret(settings.app_secret.get_secret_value())
                       .domain(settings.domain.rstrip("/")).timeout(10).log_level(lark.LogLevel.WARNING).build())
        self._app_limit = AsyncLimiter(per_app, 1)
        self._per_receiver = per_receiver
        self._receivers: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def _receiver_limit(self, receiver: str) -> AsyncLimiter:
        limiter = self._receivers.pop(receiver, None) or AsyncLimiter(self._per_receiver, 1)
        self._receivers[receiver] = limiter
        while len(self._receivers) > 2000:
            self._receivers.popitem(last=False)
        return limiter

    async def call(self, receiver: str, method, request):
        """Run one SDK call (rate-limited, retried); the response on success, else an exception.
        `request` may be a function building the request: uploads need a fresh one per attempt."""
        async for attempt in AsyncRetrying(stop=stop_after_attempt(MAX_ATTEMPTS), wait=_wait, reraise=True,
                                           retry=retry_if_exception_type(Transient)):
            with attempt:
                async with self._app_limit, self._receiver_limit(receiver):
                    try:
                        response = await asyncio.to_thread(
                            lambda: method(request() if callable(request) else request))
                    except (requests.RequestException, ValueError) as e:  # network, timeout, a non-JSON 5xx page
                        raise Transient(None, type(e).__name__) from None
                    except ObtainAccessTokenException as e:
                        if getattr(e, "code", None) in RATE_LIMITED:
                            raise Transient(e.code, "token request rate-limited") from None
                        raise FeishuError(getattr(e, "code", None), "cannot obtain a tenant access token "
                                          "(check [feishu] app_id / app_secret)") from None
                self._check(response)
                return response

    def _check(self, response) -> None:
        raw = getattr(response, "raw", None)
        status = raw.status_code if raw is not None else None
        code, msg = response.code, response.msg or ""
        if status == 429 or code in RATE_LIMITED:
            reset = _header(raw.headers if raw is not None else None, "x-ogw-ratelimit-reset")
            try:
                retry_after = float(reset) if reset is not None else None
            except ValueError:
                retry_after = None
            raise Transient(code, msg, status, retry_after if retry_after is not None else 1.0)
        if status is not None and status >= 500:
            raise Transient(code, msg, status)
        if response.success():
            return
        if code in TOKEN_INVALID:  # a revoked or expired cached token: drop it and fetch a new one
            TokenManager.cache.set(f"self_tenant_token:{self.app_id}", "", 0)
            raise Transient(code, msg, status)
        if code in UNREACHABLE:
            raise ChatUnreachable(f"Feishu error {code}: {msg}")
        raise FeishuError(code, msg, status)

    # --- messages -----------------------------------------------------------------------

    async def create(self, chat_id: str, card: dict) -> str:
        request = (CreateMessageRequest.builder().receive_id_type("chat_id")
                   .request_body(CreateMessageRequestBody.builder().receive_id(chat_id).msg_type("interactive")
                                 .content(json.dumps(card, ensure_ascii=False)).build()).build())
        response = await self.call(chat_id, self.client.im.v1.message.create, request)
        return response.data.message_id

    async def reply(self, chat_id: str, message_id: str, card: dict) -> str:
        request = (ReplyMessageRequest.builder().message_id(message_id)
                   .request_body(ReplyMessageRequestBody.builder().msg_type("interactive")
                                 .content(json.dumps(card, ensure_ascii=False)).build()).build())
        response = await self.call(chat_id, self.client.im.v1.message.reply, request)
        return response.data.message_id

    async def patch(self, chat_id: str, message_id: str, card: dict) -> None:
        request = (PatchMessageRequest.builder().message_id(message_id)
                   .request_body(PatchMessageRequestBody.builder().content(json.dumps(card, ensure_ascii=False))
                                 .build()).build())
        await self.call(chat_id, self.client.im.v1.message.patch, request)

    async def upload_image(self, image: bytes) -> str:
        def request():  # a file part with a name, from a fresh stream on every attempt
            return (CreateImageRequest.builder().request_body(
                CreateImageRequestBody.builder().image_type("message")
                .image(("image.png", io.BytesIO(image), "image/png")).build()).build())
        response = await self.call("images", self.client.im.v1.image.create, request)
        return response.data.image_key

    async def upload_file(self, name: str, data: bytes) -> str:
        def request():
            return (CreateFileRequest.builder().request_body(
                CreateFileRequestBody.builder().file_type("stream").file_name(name)
                # a file part with a name: a nameless part is a text field to multipart readers, and binary
                # files (an .apkg) are not text
                .file((name, io.BytesIO(data), "application/octet-stream")).build()).build())
        response = await self.call("files", self.client.im.v1.file.create, request)
        return response.data.file_key

    async def send_file(self, chat_id: str, file_key: str) -> str:
        request = (CreateMessageRequest.builder().receive_id_type("chat_id")
                   .request_body(CreateMessageRequestBody.builder().receive_id(chat_id).msg_type("file")
                                 .content(json.dumps({"file_key": file_key})).build()).build())
        response = await self.call(chat_id, self.client.im.v1.message.create, request)
        return response.data.message_id

    async def sent_by_bot(self, chat_id: str, message_id: str) -> bool:
        request = GetMessageRequest.builder().message_id(message_id).build()
        response = await self.call(chat_id, self.client.im.v1.message.get, request)
        items = response.data.items or [] if response.data else []
        return any(m.sender and m.sender.sender_type == "app" and m.sender.id == self.app_id for m in items)

    # --- chats, users, the bot itself ----------------------------------------------------

    async def chat(self, chat_id: str) -> ChatInfo:
        request = GetChatRequest.builder().chat_id(chat_id).user_id_type("open_id").build()
        data = (await self.call(chat_id, self.client.im.v1.chat.get, request)).data
        return ChatInfo(data.owner_id or "", frozenset(data.user_manager_id_list or ()), data.chat_mode or "group")

    async def user_name(self, open_id: str) -> str:
        request = GetUserRequest.builder().user_id(open_id).user_id_type("open_id").build()
        data = (await self.call(open_id, self.client.contact.v3.user.get, request)).data
        return (data.user.name or "") if data and data.user else ""

    async def bot_open_id(self) -> str:
        request = (lark.BaseRequest.builder().http_method(lark.HttpMethod.GET).uri("/open-apis/bot/v3/info")
                   .token_types({lark.AccessTokenType.TENANT}).build())
        response = await self.call("bot-info", self.client.request, request)
        return json.loads(response.raw.content).get("bot", {}).get("open_id", "")
