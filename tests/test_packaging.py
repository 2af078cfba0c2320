"""The package as an operator installs it: a wheel built from what the Docker build context holds,
installed into a fresh virtualenv outside the checkout, run from another folder.

This is what the Dockerfile does (pip wheel, then pip install of the wheel), minus Docker: the
dependencies come from the test environment instead of PyPI, so it stays fast.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import aiosqlite
import pytest

from bot.config import DEFAULT_CONTENT

from .conftest import write_bank

ROOT = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule, for the patterns we use: `name` matches at the root (and all below it),
    `**/name` at any depth."""
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            tail = pattern[3:]
            if any(fnmatch.fnmatch("/".join(parts[j:i]), tail) for j in range(len(parts))
                   for i in range(j + 1, len(parts) + 1)):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            return True
    return False


def build_context(target: Path) -> Path:
    patterns = dockerignore()
    assert not any(p.startswith("!") for p in patterns)  # the matcher above does not do exceptions
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and not ignored(relative, patterns):
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
    return target


def run(*args, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QUIZBOT_"))}
    return subprocess.run([str(a) for a in args], cwd=cwd, input=input, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the fresh venv's bin folder, a folder that is neither the checkout nor the venv)."""
    tmp = tmp_path_factory.mktemp("package")
    source = build_context(tmp / "context")
    built = run(sys.executable, "-m", "pip", "wheel", source, "--no-deps", "-q", "-w", tmp / "dist", cwd=tmp)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp / "dist").glob("quizbot-*.whl"))
    venv = tmp / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    assert made.returncode == 0, made.stderr
    # The dependencies: the test environment's site-packages, as a plain path entry (its own .pth
    # files, such as the editable install of this checkout, are not processed from there).
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "dependencies.pth").write_text(str(Path(aiosqlite.__file__).resolve().parent.parent) + "\n")
    done = run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "-q",
               wheel, cwd=tmp)
    assert done.returncode == 0, done.stderr
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return wheel, venv / "bin", elsewhere


def test_the_build_context_holds_what_the_wheel_is_built_from():
    patterns = dockerignore()
    for needed in ("pyproject.toml", "README.md", "LICENSE", "content/rag.yaml", "bot/config.py", "quizbot/cli.py"):
        assert not ignored(needed, patterns), needed
    for left_out in (".git/HEAD", ".venv/bin/python", "tests/conftest.py", "quizbot.db", ".env",
                     "bot/__pycache__/config.cpython-311.pyc"):
        assert ignored(left_out, patterns), left_out


def test_the_wheel_carries_the_bank_the_licence_and_the_version(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    bank = {p.name for p in (ROOT / "content").iterdir() if p.suffix in (".yaml", ".md")}
    assert bank and {f"bot/bank/{name}" for name in bank} <= names
    assert f"quizbot-{VERSION}.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"quizbot-{VERSION}.dist-info/METADATA").decode()
    assert f"Version: {VERSION}\n" in metadata and "License-Expression: Apache-2.0\n" in metadata
    assert not any(n.startswith(("tests/", "content/", "bench/")) for n in names)


def test_the_installed_bot_runs_from_any_folder_on_its_shipped_bank(installed, tmp_path):
    _, bin, elsewhere = installed
    version = run(bin / "quizbot", "--version", cwd=elsewhere)
    assert version.returncode == 0 and version.stdout.strip() == f"quizbot {VERSION}"

    where = run(bin / "python", "-c", "import bot.config; print(bot.config.DEFAULT_CONTENT)", cwd=elsewhere)
    shipped = Path(where.stdout.strip())
    assert shipped.is_relative_to(bin.parent) and shipped.name == "bank"  # inside the venv, not the checkout
    stats = run(bin / "quizbot", "content", "stats", cwd=elsewhere)   # the default bank: the shipped one
    assert stats.returncode == 0, stats.stderr
    for topic in (ROOT / "content").glob("*.yaml"):
        if topic.name != "plans.yaml":
            assert f"\n{topic.stem} " in stats.stdout, topic.stem

    small = write_bank(tmp_path / "small-bank")
    checked = run(bin / "quizbot", "content", "check", small, cwd=elsewhere)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    (elsewhere / "config.toml").write_text(f'[bot]\ncontent_dir = "{small}"\n', encoding="utf-8")
    session = run(bin / "quizbot", "run", cwd=elsewhere, input="/topic rag\n先检索相关文档，再拼进提示词\n3\n")
    assert session.returncode == 0, session.stderr
    assert "什么是检索增强生成？" in session.stdout and "已记录：答对" in session.stdout
    assert session.stderr == ""                                # the console's chat stays free of log lines
    assert (elsewhere / "quizbot.db").is_file()                # the database in the working directory

    health = run(bin / "quizbot", "health", cwd=elsewhere)     # the session has ended: stopped cleanly
    assert health.returncode == 1 and '"reason": "the bot stopped at' in health.stdout


def test_a_checkout_finds_its_bank_in_content():
    assert DEFAULT_CONTENT == ROOT / "content"
