"""python-telegram-bot's requests on aiohttp (adapters/telegram_request.py): a Bot API that does
not answer in time is a TimedOut, one that cannot be reached a NetworkError without the token."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from telegram.error import NetworkError, TimedOut

from adapters.telegram_request import AiohttpRequest

TOKEN = "7000001:AAF-test-SECRET-token_x9"


@pytest.fixture
async def slow_api():
    async def answer_late(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/{path:.*}", answer_late)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    await runner.cleanup()


async def test_a_bot_api_that_does_not_answer_in_time_is_a_time_out(slow_api):
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{slow_api}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()


async def test_an_unreachable_bot_api_is_a_network_error_that_keeps_the_token_out():
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            await request.post(f"http://127.0.0.1:9/bot{TOKEN}/getMe")  # the discard port: nothing listens
    finally:
        await request.shutdown()
    assert "Connection refused" in str(raised.value) and TOKEN not in str(raised.value)
