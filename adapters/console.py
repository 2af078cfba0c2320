"""A terminal chat: type commands and answers, press a button by typing its number.

It lets anyone try quizbot with no token. stdin is read on a daemon thread so a blocked read
never holds up the event loop or the exit.
"""
from __future__ import annotations

import asyncio
import getpass
import logging
import sys
import threading
from pathlib import Path
from typing import TextIO

from bot.i18n import t
from bot.markup import section_markup, segments
from bot.models import Chat, Incoming, Reply, User

from .base import Handler, split_command

log = logging.getLogger(__name__)
_BOLD, _RESET = "\033[1m", "\033[0m"
CHART_FILE = Path("quizbot-chart.png")


class ConsoleAdapter:
    platform = "console"

    def __init__(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout):
        self.stdin, self.stdout = stdin, stdout
        self.chat = Chat(self.platform, "local")
        self.user = User(self.platform, "local", _login_name())
        self.closed = asyncio.Event()
        self._buttons: list[str] = []  # data of the buttons on screen, numbered from 1
        self._colour = stdout.isatty()
        self.lines = 0  # lines read so far

    async def start(self, handler: Handler) -> None:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        def read() -> None:
            try:  # bytes that are not UTF-8 cost their characters (as �), never the line or the session
                source = self.stdin.buffer if hasattr(self.stdin, "buffer") else self.stdin
                for line in source:
                    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
                    loop.call_soon_threadsafe(lines.put_nowait, text)
            except (OSError, ValueError) as e:
                log.warning("console: cannot read input any more: %s", e)
            finally:
                loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=read, name="console-stdin", daemon=True).start()
        self._task = asyncio.create_task(self._serve(handler, lines))

    async def _serve(self, handler: Handler, lines: asyncio.Queue) -> None:
        self._prompt()
        while (line := await lines.get()) is not None:
            self.lines += 1
            incoming = self.parse(line.rstrip("\r\n"))
            if incoming is not None:
                for reply in await handler(incoming):
                    try:
                        await self.send(self.chat, reply)
                    except Exception as e:  # one reply that cannot be shown costs that reply, not the session
                        log.warning("console: could not show a reply: %s", e)
                        try:
                            self._write("  " + t("send_failed", reply.lang or "zh", error=type(e).__name__) + "\n")
                        except Exception:
                            pass
            self._prompt()
        self.closed.set()

    def parse(self, line: str) -> Incoming | None:
        text = line.strip()
        if not text:
            return None
        if text.isdigit() and 1 <= int(text) <= len(self._buttons):
            return Incoming(self.chat, self.user, "button", self._buttons[int(text) - 1])
        command = split_command(text)
        if command:
            return Incoming(self.chat, self.user, "command", command[0], command[1])
        return Incoming(self.chat, self.user, "text", line)

    async def send(self, chat: Chat, reply: Reply) -> str | None:
        # A push to another console chat (set up by hand in the database) says whom it is for.
        to = "" if chat.id == self.chat.id else f"\n[→ {chat.key}]"
        self._write(to + self.render(reply) + "\n")
        lang = reply.lang or "zh"
        if reply.image:  # a terminal shows no pictures: save it beside the database
            self._save(CHART_FILE, reply.image, lang, "image_saved")
        for attachment in reply.files:
            self._save(Path(attachment.name), attachment.data, lang, "file_saved")
        return None

    def _save(self, path: Path, data: bytes, lang: str, saved: str) -> None:
        try:
            path.write_bytes(data)
            self._write("  " + t(saved, lang, path=path) + "\n")
        except OSError as e:
            self._write("  " + t("save_failed", lang, path=path, error=e.strerror or type(e).__name__) + "\n")

    def _write(self, text: str) -> None:
        """Write and flush; a terminal that cannot show some characters gets them replaced."""
        try:
            self.stdout.write(text)
        except UnicodeEncodeError:
            encoding = getattr(self.stdout, "encoding", None) or "ascii"
            self.stdout.write(text.encode(encoding, "replace").decode(encoding))
        self.stdout.flush()

    def _styled(self, text: str) -> str:
        return "".join(f"{_BOLD}{part}{_RESET}" if style == "bold" and self._colour else part
                       for style, part in segments(text))

    def render(self, reply: Reply) -> str:
        blocks = [self._styled(reply.text)] if reply.text else []
        for section in reply.sections:
            body = self._styled(section_markup(section))
            if body and section.hidden:  # one reader at a terminal: shown, but marked as the hidden part
                body = "\n".join([f"┌ {section.title}"] + [f"│ {line}" for line in body.splitlines()] + ["└"])
            if body:
                blocks.append(body)
        out = "\n".join("  " + line if line else "" for line in "\n\n".join(blocks).splitlines())
        if reply.buttons:
            self._buttons = [b.data for row in reply.buttons for b in row]
            labels, number = [], 0
            for row in reply.buttons:
                cells = []
                for button in row:
                    number += 1
                    cells.append(f"[{number}] {button.label}")
                labels.append("  " + "   ".join(cells))
            out += "\n" + "\n".join(labels)
        return "\n" + out

    def _prompt(self) -> None:
        if self.stdin.isatty():
            self._write("\n> ")

    async def stop(self) -> None:
        task = getattr(self, "_task", None)
        if task and not task.done():
            task.cancel()


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return ""
