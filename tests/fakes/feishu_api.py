"""A stand-in of the Feishu Open API and its long-connection gateway, for end-to-end tests.

It runs on 127.0.0.1 in its own thread with its own event loop: lark-oapi's HTTP calls block, and a
server on the same loop as a blocking call would deadlock. Point the real SDK at `fake.url`
(`[feishu] domain`). It serves:

- POST /open-apis/auth/v3/tenant_access_token/internal
- POST /open-apis/im/v1/messages?receive_id_type=chat_id, POST …/messages/{id}/reply,
  PATCH …/messages/{id} (card update), GET …/messages/{id}
- GET /open-apis/im/v1/chats/{chat_id} (owner, managers, chat_mode)
- GET /open-apis/contact/v3/users/{open_id}, GET /open-apis/bot/v3/info
- POST /callback/ws/endpoint and a websocket at /ws speaking the SDK's protobuf frames:
  `await fake.push(event)` sends an event frame and returns the client's answer (the decoded
  card-action response for a `card.action.trigger`).

Every call is recorded in `calls`; faults can be injected: `fail_next(n, status, code, headers)`
for the next n message calls, and `unreachable` chat ids answer "bot not in chat".
Helpers at the bottom build the platform's event payloads and read cards back as text.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_OPEN_ID = "ou_quizbot"
TENANT_TOKEN = "t-fake-tenant-token"
BOT_NOT_IN_CHAT = 230002


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Fault:
    status: int
    code: int
    headers: dict[str, str] = field(default_factory=dict)


class FakeFeishu:
    def __init__(self, app_id: str = "cli_test"):
        self.app_id = app_id
        self.calls: list[Call] = []
        self.messages: dict[str, dict] = {}       # message id → {chat_id, msg_type, card, parent_id, sender}
        self.chats: dict[str, dict] = {}          # chat id → {owner_id, managers, chat_mode}
        self.users: dict[str, str] = {}           # open id → display name
        self.unreachable: set[str] = set()
        self.images: dict[str, bytes] = {}        # image key → the uploaded bytes
        self.files: dict[str, tuple[str, bytes]] = {}  # file key → (file name, the uploaded bytes)
        self.ws_answers: list[dict] = []          # every answer frame's decoded payload
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._ws: web.WebSocketResponse | None = None
        self._waiting: dict[str, asyncio.Future] = {}
        self.ws_connected = threading.Event()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> "FakeFeishu":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-feishu", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Feishu server did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", self._token)
        app.router.add_post("/open-apis/im/v1/messages", self._create)
        app.router.add_post("/open-apis/im/v1/messages/{id}/reply", self._reply)
        app.router.add_patch("/open-apis/im/v1/messages/{id}", self._patch)
        app.router.add_get("/open-apis/im/v1/messages/{id}", self._get_message)
        app.router.add_post("/open-apis/im/v1/images", self._upload_image)
        app.router.add_post("/open-apis/im/v1/files", self._upload_file)
        app.router.add_get("/open-apis/im/v1/chats/{id}", self._get_chat)
        app.router.add_get("/open-apis/contact/v3/users/{id}", self._get_user)
        app.router.add_get("/open-apis/bot/v3/info", self._bot_info)
        app.router.add_post("/callback/ws/endpoint", self._endpoint)
        app.router.add_get("/ws", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False)
        self.loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._runner.cleanup())
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def close_ws():
            if self._ws is not None:
                await self._ws.close()
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(close_ws(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    # --- faults and queries -------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 429, code: int = 99991400, headers: dict[str, str] | None = None):
        with self._lock:
            self._faults.extend(Fault(status, code, dict(headers or {})) for _ in range(n))

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def sent(self, chat_id: str | None = None) -> list[dict]:
        """Messages the bot created or replied with, oldest first (with their current card)."""
        return [m for m in self.messages.values() if m["sender"] == "app" and (chat_id is None or m["chat_id"] == chat_id)]

    def observe(self, payload: dict) -> None:
        """Remember a user's message from an event about to be delivered, so the bot can reply to it."""
        if payload.get("header", {}).get("event_type") == "im.message.receive_v1":
            event = payload["event"]
            message = event["message"]
            self.messages[message["message_id"]] = {
                "message_id": message["message_id"], "chat_id": message["chat_id"], "msg_type": message["message_type"],
                "parent_id": message["parent_id"], "sender": event["sender"]["sender_id"]["open_id"],
                "text": json.loads(message["content"]).get("text", "")}

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    # --- HTTP handlers ------------------------------------------------------------------

    async def _record(self, request: web.Request) -> Call:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        call = Call(request.method, request.path, dict(request.query), body, dict(request.headers))
        self.calls.append(call)
        return call

    @staticmethod
    def _json(data: dict, status: int = 200, headers: dict | None = None) -> web.Response:
        return web.json_response(data, status=status, headers=headers)

    async def _admit(self, request: web.Request):
        """Record an API call; refuse it as Feishu would without a valid token, or with a queued fault."""
        call = await self._record(request)
        if not self._authorised(request):
            return call, self._json({"code": 99991663, "msg": "invalid access token"}, 400)
        return call, self._fault_response()

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TENANT_TOKEN}"

    async def _token(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        if not call.body or call.body.get("app_id") != self.app_id or not call.body.get("app_secret"):
            return self._json({"code": 10014, "msg": "app secret invalid"}, 400)
        return self._json({"code": 0, "msg": "ok", "tenant_access_token": TENANT_TOKEN, "expire": 7200})

    def _fault_response(self) -> web.Response | None:
        fault = self._take_fault()
        if fault is None:
            return None
        return self._json({"code": fault.code, "msg": "injected fault"}, fault.status, fault.headers)

    def _new_message(self, chat_id: str, body: dict, parent_id: str = "") -> dict:
        message_id = f"om_bot{next(self._ids)}"
        message = {"message_id": message_id, "chat_id": chat_id, "msg_type": body["msg_type"], "parent_id": parent_id,
                   "sender": "app", "card": json.loads(body["content"]), "updates": 0}
        self.messages[message_id] = message
        return {"code": 0, "msg": "success", "data": {"message_id": message_id, "chat_id": chat_id,
                                                      "msg_type": body["msg_type"], "parent_id": parent_id}}

    async def _create(self, request: web.Request) -> web.Response:
        call, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        if call.query.get("receive_id_type") != "chat_id":
            return self._json({"code": 230001, "msg": "bad receive_id_type"}, 400)
        chat_id = call.body["receive_id"]
        if chat_id in self.unreachable:
            return self._json({"code": BOT_NOT_IN_CHAT, "msg": "Bot/User can NOT be out of the chat."}, 400)
        return self._json(self._new_message(chat_id, call.body))

    async def _reply(self, request: web.Request) -> web.Response:
        call, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        parent = self.messages.get(request.match_info["id"])
        if parent is None:
            return self._json({"code": 230011, "msg": "The message is recalled or not found."}, 400)
        if parent["chat_id"] in self.unreachable:
            return self._json({"code": BOT_NOT_IN_CHAT, "msg": "Bot/User can NOT be out of the chat."}, 400)
        return self._json(self._new_message(parent["chat_id"], call.body, parent["message_id"]))

    async def _patch(self, request: web.Request) -> web.Response:
        call, refusal = await self._admit(request)
        if refusal is not None:
            return refusal
        message = self.messages.get(request.match_info["id"])
        if message is None or message["sender"] != "app":
            return self._json({"code": 230011, "msg": "The message is recalled or not found."}, 400)
        card = json.loads(call.body["content"])
        if not card.get("config", {}).get("update_multi"):
            return self._json({"code": 230001, "msg": "only shared cards (update_multi) can be patched"}, 400)
        message["card"] = card
        message["updates"] += 1
        return self._json({"code": 0, "msg": "success", "data": {}})

    async def _upload_image(self, request: web.Request) -> web.Response:
        form = await request.post()  # multipart: read as a form, not through _record
        self.calls.append(Call(request.method, request.path, dict(request.query), dict(form), dict(request.headers)))
        if not self._authorised(request):
            return self._json({"code": 99991663, "msg": "invalid access token"}, 400)
        if (fault := self._fault_response()) is not None:
            return fault
        if form.get("image_type") != "message" or not hasattr(form.get("image"), "file"):
            return self._json({"code": 234001, "msg": "bad image upload"}, 400)
        key = f"img_v2_{next(self._ids)}"
        self.images[key] = form["image"].file.read()
        return self._json({"code": 0, "msg": "success", "data": {"image_key": key}})

    async def _upload_file(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.calls.append(Call(request.method, request.path, dict(request.query), dict(form), dict(request.headers)))
        if not self._authorised(request):
            return self._json({"code": 99991663, "msg": "invalid access token"}, 400)
        if (fault := self._fault_response()) is not None:
            return fault
        if form.get("file_type") not in ("stream", "pdf", "doc", "xls", "ppt", "mp4", "opus") \
                or not form.get("file_name") or not hasattr(form.get("file"), "file"):
            return self._json({"code": 234001, "msg": "bad file upload"}, 400)
        key = f"file_v2_{next(self._ids)}"
        self.files[key] = (form["file_name"], form["file"].file.read())
        return self._json({"code": 0, "msg": "success", "data": {"file_key": key}})

    async def _get_message(self, request: web.Request) -> web.Response:
        await self._record(request)
        message = self.messages.get(request.match_info["id"])
        if message is None:
            return self._json({"code": 230011, "msg": "The message is recalled or not found."}, 400)
        sender = ({"id": self.app_id, "id_type": "app_id", "sender_type": "app"} if message["sender"] == "app"
                  else {"id": message["sender"], "id_type": "open_id", "sender_type": "user"})
        item = {"message_id": message["message_id"], "chat_id": message["chat_id"], "msg_type": message["msg_type"],
                "sender": sender, "body": {"content": json.dumps(message.get("card", {}))}}
        return self._json({"code": 0, "msg": "success", "data": {"items": [item]}})

    async def _get_chat(self, request: web.Request) -> web.Response:
        await self._record(request)
        chat = self.chats.get(request.match_info["id"])
        if chat is None:
            return self._json({"code": 232011, "msg": "chat not found"}, 400)
        return self._json({"code": 0, "msg": "success", "data": {
            "name": chat.get("name", ""), "owner_id_type": "open_id", "owner_id": chat.get("owner_id", ""),
            "user_manager_id_list": chat.get("managers", []), "chat_mode": chat.get("chat_mode", "group")}})

    async def _get_user(self, request: web.Request) -> web.Response:
        await self._record(request)
        name = self.users.get(request.match_info["id"])
        if name is None:
            return self._json({"code": 41050, "msg": "no user authority"}, 400)
        return self._json({"code": 0, "msg": "success", "data": {"user": {"open_id": request.match_info["id"],
                                                                           "name": name}}})

    async def _bot_info(self, request: web.Request) -> web.Response:
        await self._record(request)
        return self._json({"code": 0, "msg": "ok", "bot": {"open_id": BOT_OPEN_ID, "app_name": "quizbot",
                                                            "activate_status": 2}})

    # --- the long connection -----------------------------------------------------------

    async def _endpoint(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        if call.body.get("AppID") != self.app_id or not call.body.get("AppSecret"):
            return self._json({"code": 1000040343, "msg": "bad credentials"})
        return self._json({"code": 0, "msg": "ok", "data": {
            "URL": f"ws://127.0.0.1:{self.port}/ws?device_id=dev1&service_id=7",
            "ClientConfig": {"ReconnectCount": 0, "ReconnectInterval": 1, "ReconnectNonce": 0, "PingInterval": 120}}})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        from lark_oapi.ws.pb.pbbp2_pb2 import Frame

        self.calls.append(Call("GET", request.path, dict(request.query), None, dict(request.headers)))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self.ws_connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                frame = Frame()
                frame.ParseFromString(msg.data)
                headers = {h.key: h.value for h in frame.headers}
                if frame.method == 0:  # control: ping → pong
                    if headers.get("type") == "ping":
                        await ws.send_bytes(_frame(Frame, 0, {"type": "pong"}, b"", frame.service).SerializeToString())
                    continue
                answer = json.loads(frame.payload) if frame.payload else {}
                if answer.get("data"):
                    answer["data"] = json.loads(base64.b64decode(answer["data"]))
                self.ws_answers.append(answer)
                waiter = self._waiting.pop(headers.get("message_id", ""), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(answer)
        finally:
            self._ws = None
            self.ws_connected.clear()
        return ws

    async def _push(self, payload: dict, timeout: float) -> dict:
        from lark_oapi.ws.pb.pbbp2_pb2 import Frame

        if self._ws is None:
            raise RuntimeError("no websocket client is connected")
        self.observe(payload)
        message_id = uuid.uuid4().hex
        waiter = self.loop.create_future()
        self._waiting[message_id] = waiter
        headers = {"type": "event", "message_id": message_id, "trace_id": uuid.uuid4().hex, "sum": "1", "seq": "0"}
        await self._ws.send_bytes(_frame(Frame, 1, headers, json.dumps(payload).encode(), 7).SerializeToString())
        return await asyncio.wait_for(waiter, timeout)

    async def push(self, payload: dict, timeout: float = 10) -> dict:
        """Send one event over the long connection; the client's answer frame payload (with `data`
        decoded), e.g. {"code": 200, "data": {"toast": …}} for a card action."""
        future = asyncio.run_coroutine_threadsafe(self._push(payload, timeout), self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout + 1)


def _frame(frame_class, method: int, headers: dict[str, str], payload: bytes, service: int):
    frame = frame_class()
    frame.SeqID, frame.LogID, frame.service, frame.method = 0, 0, service, method
    for key, value in headers.items():
        header = frame.headers.add()
        header.key, header.value = key, value
    frame.payload = payload
    return frame


# --- event payloads as Feishu sends them -------------------------------------------------------

def _header(event_type: str, token: str, app_id: str, event_id: str | None) -> dict:
    return {"event_id": event_id or uuid.uuid4().hex, "event_type": event_type, "token": token, "app_id": app_id,
            "tenant_key": "tenant1", "create_time": str(int(time.time() * 1000))}


def message_event(chat_id: str, sender: str, text: str, *, chat_type: str = "p2p", mentions: list[dict] | None = None,
                  parent_id: str = "", message_id: str | None = None, token: str = "", app_id: str = "cli_test",
                  event_id: str | None = None, message_type: str = "text", content: dict | None = None) -> dict:
    message_id = message_id or f"om_user{uuid.uuid4().hex[:10]}"
    return {"schema": "2.0", "header": _header("im.message.receive_v1", token, app_id, event_id), "event": {
        "sender": {"sender_id": {"open_id": sender, "union_id": f"on_{sender}", "user_id": sender},
                   "sender_type": "user", "tenant_key": "tenant1"},
        "message": {"message_id": message_id, "root_id": parent_id, "parent_id": parent_id,
                    "create_time": str(int(time.time() * 1000)), "chat_id": chat_id, "chat_type": chat_type,
                    "message_type": message_type, "content": json.dumps(content or {"text": text}, ensure_ascii=False),
                    "mentions": mentions or []}}}


def bot_mention(key: str = "@_user_1") -> dict:
    return {"key": key, "id": {"open_id": BOT_OPEN_ID, "union_id": "on_bot", "user_id": ""}, "name": "quizbot",
            "tenant_key": "tenant1", "mentioned_type": "bot"}


def card_event(chat_id: str, operator: str, value: dict, message_id: str, *, token: str = "",
               app_id: str = "cli_test", event_id: str | None = None) -> dict:
    return {"schema": "2.0", "header": _header("card.action.trigger", token, app_id, event_id), "event": {
        "operator": {"tenant_key": "tenant1", "open_id": operator, "union_id": f"on_{operator}", "user_id": operator},
        "token": "c-" + uuid.uuid4().hex, "action": {"value": value, "tag": "button"}, "host": "im_message",
        "context": {"open_message_id": message_id, "open_chat_id": chat_id}}}


def bot_added_event(chat_id: str, operator: str, *, removed: bool = False, token: str = "",
                    app_id: str = "cli_test", event_id: str | None = None) -> dict:
    event_type = "im.chat.member.bot.deleted_v1" if removed else "im.chat.member.bot.added_v1"
    return {"schema": "2.0", "header": _header(event_type, token, app_id, event_id), "event": {
        "chat_id": chat_id, "operator_id": {"open_id": operator, "union_id": f"on_{operator}", "user_id": operator},
        "external": False, "operator_tenant_key": "tenant1", "name": "study group"}}


def p2p_entered_event(chat_id: str, operator: str, *, token: str = "", app_id: str = "cli_test",
                      event_id: str | None = None) -> dict:
    """A person opened the bot's private chat."""
    return {"schema": "2.0", "header": _header("im.chat.access_event.bot_p2p_chat_entered_v1", token, app_id, event_id),
            "event": {"chat_id": chat_id, "operator_id": {"open_id": operator, "union_id": f"on_{operator}",
                                                          "user_id": operator}, "last_message_id": ""}}


def url_verification(token: str, challenge: str = "challenge-123") -> dict:
    return {"challenge": challenge, "token": token, "type": "url_verification"}


def encrypt(payload: dict, encrypt_key: str) -> bytes:
    """The body Feishu posts when an Encrypt Key is set: AES-256-CBC, key sha256(encrypt_key),
    random 16-byte IV prefix, PKCS#7 padding, base64. Written independently of the SDK."""
    from Crypto.Cipher import AES

    plain = json.dumps(payload, ensure_ascii=False).encode()
    pad = 16 - len(plain) % 16
    iv = os.urandom(16)
    cipher = AES.new(hashlib.sha256(encrypt_key.encode()).digest(), AES.MODE_CBC, iv)
    blob = base64.b64encode(iv + cipher.encrypt(plain + bytes([pad]) * pad)).decode()
    return json.dumps({"encrypt": blob}).encode()


def signature_headers(body: bytes, encrypt_key: str, timestamp: str | None = None, nonce: str = "n0nce") -> dict:
    timestamp = timestamp or str(int(time.time()))
    digest = hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()
    return {"X-Lark-Request-Timestamp": timestamp, "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": digest,
            "Content-Type": "application/json"}


# --- reading cards back ------------------------------------------------------------------------

def card_texts(card: dict) -> list[str]:
    """Every piece of text on a card (header, bodies, collapsed panels), in order."""
    out: list[str] = []
    title = card.get("header", {}).get("title", {}).get("content")
    if title:
        out.append(title)

    def walk(elements: list[dict]) -> None:
        for element in elements:
            if element.get("tag") == "div":
                out.append(element["text"]["content"])
            elif element.get("tag") == "markdown":
                out.append(element["content"])
            elif element.get("tag") == "collapsible_panel":
                walk(element.get("elements", []))
    walk(card.get("elements", []))
    return out


def card_text(card: dict) -> str:
    return "\n".join(card_texts(card))


def card_buttons(card: dict) -> dict[str, str]:
    """label → button data of every button on a card."""
    return {b["text"]["content"]: b["value"]["data"] for element in card.get("elements", [])
            if element.get("tag") == "action" for b in element["actions"]}


def card_values(card: dict) -> dict[str, dict]:
    """label → the whole `value` of every button on a card: what Feishu sends back on a press."""
    return {b["text"]["content"]: b["value"] for element in card.get("elements", [])
            if element.get("tag") == "action" for b in element["actions"]}


def collapsed_panels(card: dict) -> list[dict]:
    return [e for e in card.get("elements", []) if e.get("tag") == "collapsible_panel"]
