"""The deployment files an operator copies: Dockerfile (linted with hadolint), compose.yaml,
.env.example, the systemd units, the documented config keys, and the docs that tie them together.
Docker itself cannot run here: tests/test_packaging.py proves what the image does (build the
wheel, install it, run it from another folder)."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from bot.config import ENVIRONMENT, Settings

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", dockerfile)
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(ROOT / "deploy" / name, encoding="utf-8")
    return parser


def test_hadolint_passes_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_quizbot_as_a_non_root_user_with_its_data_on_a_volume():
    steps = instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    bases = [args for op, args in steps if op == "FROM"]
    assert bases and all(re.match(r"python:3\.1[1-9][.\w-]*-slim", b) for b in bases)
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]
    [user] = [args for op, args in final if op == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    assert ("VOLUME", '["/data"]') in final and ("WORKDIR", "/data") in final
    assert ("CMD", '["quizbot", "run"]') in final
    [check] = [args for op, args in final if op == "HEALTHCHECK"]
    assert check.endswith('CMD ["quizbot", "health"]')
    assert any(op == "RUN" and "pip install" in args and "/wheels/quizbot-" in args for op, args in final)


def test_compose_restarts_the_bot_keeps_its_volume_and_reads_secrets_from_env():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["quizbot"]
    assert service["restart"] in ("unless-stopped", "always")
    assert service["env_file"] == ".env"
    assert any(v.endswith(":/data") and v.split(":")[0] in compose["volumes"] for v in service["volumes"])
    assert service["healthcheck"]["test"] == ["CMD", "quizbot", "health"]
    for mapping in service.get("ports", []):                 # published only to the host's loopback
        assert str(mapping).startswith("127.0.0.1:")
    for line in (ROOT / "compose.yaml").read_text(encoding="utf-8").splitlines():
        if re.match(r"\s*#\s*- \"\d", line):                  # the commented-out examples too
            assert '"127.0.0.1:' in line, line


def test_env_example_lists_every_environment_variable_and_holds_no_secret():
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert set(ENVIRONMENT) <= set(values)
    assert all(value == "" for value in values.values())


def test_the_systemd_unit_restarts_on_failure_as_a_confined_user():
    service = unit("quizbot.service")["Service"]
    assert service["User"] == "quizbot" and service["Restart"] == "on-failure"
    assert service["WorkingDirectory"] == "/var/lib/quizbot" and service["StateDirectory"] == "quizbot"
    assert service["EnvironmentFile"] == "/etc/quizbot/quizbot.env"
    assert service["ExecStart"].split()[1:3] == ["run", "--config"]
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert service["RestartPreventExitStatus"] == "2"           # a bad config is not retried forever
    assert unit("quizbot.service")["Install"]["WantedBy"] == "multi-user.target"


def test_the_backup_timer_runs_quizbot_backup_nightly():
    timer = unit("quizbot-backup.timer")["Timer"]
    assert timer["OnCalendar"].endswith("03:30:00") and timer["Persistent"] == "true"
    backup = unit("quizbot-backup.service")["Service"]
    assert backup["Type"] == "oneshot" and backup["User"] == "quizbot"
    assert backup["ExecStart"].split()[1:3] == ["backup", "/var/lib/quizbot/backups/"] and "--keep" in backup["ExecStart"]


def test_every_config_key_is_documented_in_the_example():
    documented: dict[str, set[str]] = {}
    section = ""
    for line in (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines():
        if match := re.match(r"\[(\w+)\]", line):
            section = match[1]
        elif match := re.match(r"#?\s*(\w+)\s*=", line):
            documented.setdefault(section, set()).add(match[1])
    for name, field in Settings.model_fields.items():
        keys = set(field.annotation.model_fields)
        assert keys <= documented.get(name, set()), (name, keys - documented.get(name, set()))


def test_the_licence_changelog_and_version_agree():
    assert PYPROJECT["project"]["license"] == "Apache-2.0" and PYPROJECT["project"]["license-files"] == ["LICENSE"]
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence and "END OF TERMS AND CONDITIONS" in licence
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    [first] = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)[:1]
    assert first == PYPROJECT["project"]["version"]


def test_the_deploy_guide_names_only_files_and_commands_that_exist():
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for path in set(re.findall(r"\b((?:deploy|docs)/[\w.-]+|\.env\.example|compose\.yaml|config\.example\.toml)", guide)):
        assert (ROOT / path).exists(), path
    usage = subprocess.run([sys.executable, "-m", "quizbot.cli", "--help"], capture_output=True, text=True, timeout=60)
    commands = set(re.search(r"\{([\w,]+)\}", usage.stdout)[1].split(","))
    used = subcommands(guide)
    assert {"health", "backup", "push"} <= used and used <= commands, used - commands
    for topic in ("docker compose up", "systemctl enable", "reverse_proxy", "proxy_pass", "quizbot backup",
                  "Restore", "Upgrading", "quizbot-backup.timer", "crontab"):
        assert topic in guide, topic


# Words after which "quizbot" names the service, the user or the unit, not the program.
NOT_THE_PROGRAM = {"exec", "-T", "--no-deps", "stop", "start", "restart", "status", "-u", "-g", "enable", "--now",
                   "logs", "security", "useradd"}


def subcommands(markdown: str) -> set[str]:
    """The `quizbot SUBCOMMAND` uses in the guide's code (fenced blocks and inline spans)."""
    code = re.findall(r"```.*?```", markdown, re.S) + re.findall(r"`[^`\n]+`", markdown)
    used = set()
    for line in "\n".join(code).replace("`", " ").splitlines():
        tokens = line.split()
        for i, token in enumerate(tokens[:-1]):
            if token in ("quizbot", "/opt/quizbot/bin/quizbot") and (i == 0 or tokens[i - 1] not in NOT_THE_PROGRAM):
                following = tokens[i + 1]
                if re.fullmatch(r"[a-z]+", following) and following != "quizbot":
                    used.add(following)
    return used
