"""A stand-in for an OpenAI-compatible chat-completions endpoint (DeepSeek, Qwen, Ollama, vLLM all
speak it), for tests of the LLM grader through the real `openai` SDK.

It records every request (body and headers) and answers with whatever the test set: a verdict,
raw text, an HTTP error, or a delay longer than the client's time-out.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Request:
    body: dict
    headers: dict


@dataclass
class FakeChatCompletions:
    content: str = '{"covered": [], "suggested": 1, "feedback": ""}'  # the assistant message returned
    status: int = 200
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    def verdict(self, covered: list[int], suggested: int, feedback: str) -> None:
        self.content = json.dumps({"covered": covered, "suggested": suggested, "feedback": feedback},
                                  ensure_ascii=False)

    async def start(self) -> "FakeChatCompletions":
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _complete(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Request(body, dict(request.headers)))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"error": {"message": "injected", "type": "server_error"}}, status=self.status)
        return web.json_response({
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""), "choices": [{"index": 0, "finish_reason": "stop",
                                                         "message": {"role": "assistant", "content": self.content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
