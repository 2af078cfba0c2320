"""The event loop the bot runs on: uvloop when it is installed (`pip install 'quizbot[fast]'`),
asyncio's own otherwise. uvloop spends less CPU per wake-up, which a big push makes many of."""
from __future__ import annotations

import asyncio
from typing import Any, Coroutine

try:
    import uvloop
except ImportError:  # optional
    uvloop = None


def loop_name() -> str:
    return "uvloop" if uvloop is not None else "asyncio"


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run on the fastest loop available."""
    if uvloop is not None:
        return uvloop.run(main)
    return asyncio.run(main)
