"""Settings from a TOML file (see config.example.toml), with secrets also from the environment.

A bad key or value is reported by its name, e.g. "[schedule] time: …"; secrets are SecretStr so
they never show up in a log line or a repr.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .timeutil import parse_hhmm, zone


def _shipped_bank() -> Path:
    """The question bank: bot/bank/ inside an installed wheel, else content/ in the checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "bank"
    return packaged if packaged.is_dir() else here.parent / "content"


DEFAULT_CONTENT = _shipped_bank()
ENVIRONMENT = {  # variable → (section, key)
    "QUIZBOT_TELEGRAM_TOKEN": ("telegram", "token"),
    "QUIZBOT_TELEGRAM_WEBHOOK_SECRET": ("telegram", "webhook_secret"),
    "QUIZBOT_FEISHU_APP_ID": ("feishu", "app_id"),
    "QUIZBOT_FEISHU_APP_SECRET": ("feishu", "app_secret"),
    "QUIZBOT_FEISHU_VERIFICATION_TOKEN": ("feishu", "verification_token"),
    "QUIZBOT_FEISHU_ENCRYPT_KEY": ("feishu", "encrypt_key"),
    "QUIZBOT_GRADER_API_KEY": ("grader", "api_key"),
}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(Section):
    path: str = "quizbot.db"
    keep_days: int = Field(default=90, ge=2)  # finished delivery-ledger rows older than this are pruned hourly


class ScheduleSettings(Section):
    time: str = "09:00"
    timezone: str = "Asia/Shanghai"
    catch_up_hours: float = Field(default=6, ge=0, le=24)

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        parsed = parse_hhmm(value)
        if parsed is None:
            raise ValueError(f"'{value}' is not a 24-hour time like 09:00")
        return parsed.strftime("%H:%M")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if zone(value) is None:
            raise ValueError(f"'{value}' is not an IANA time zone like Asia/Shanghai")
        return value


class PushSettings(Section):
    """How the daily push fans out. Rates sit below the platforms' limits (Telegram ~30 msg/s,
    Feishu ~50 req/s) so interactive replies always have room next to a big push."""

    telegram_per_second: float = Field(default=25, gt=0)   # for the token: every process together
    telegram_paid_per_second: float = Field(default=950, gt=0, le=1000)  # with [telegram] paid_broadcast
    feishu_per_second: float = Field(default=40, gt=0)
    console_per_second: float = Field(default=1000, gt=0)
    in_flight: int = Field(default=0, ge=0, le=256)        # sends under way at once (the repeat window after a
                                                           # crash); 0: follow the pace (bot/delivery.py in_flight_for)
    lease_seconds: float = Field(default=120, gt=0)        # a stopped worker's claims are taken over after this
    max_attempts: int = Field(default=8, ge=1)
    digest_weekday: int = Field(default=7, ge=1, le=7)     # ISO weekday of the weekly digest (7 = Sunday)
    digest_time: str = "20:00"

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, value: str) -> str:
        return ScheduleSettings._time(value)


class BotSettings(Section):
    lang: Literal["zh", "en"] = "zh"
    content_dir: Path = DEFAULT_CONTENT
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    log_file: Path | None = None  # default: stderr (in console mode at WARNING unless log_level is set)


class HealthSettings(Section):
    listen: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)  # 0: no HTTP /healthz; `quizbot health` works regardless


class TelegramSettings(Section):
    token: SecretStr = SecretStr("")
    api_base_url: str = "https://api.telegram.org/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"  # behind a TLS proxy on this machine; "0.0.0.0" opens it to the network
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_secret: SecretStr = SecretStr("")
    messages_per_second: float = Field(default=30, ge=0)  # overall pace (Telegram's limit); 0 = none, e.g. a local Bot API server
    paid_broadcast: bool = False  # pushes and digests with allow_paid_broadcast, at [push] telegram_paid_per_second: Stars

    @property
    def enabled(self) -> bool:
        return bool(self.token.get_secret_value())


class FeishuSettings(Section):
    app_id: str = ""
    app_secret: SecretStr = SecretStr("")
    domain: str = "https://open.feishu.cn"
    mode: Literal["ws", "webhook"] = "ws"
    verification_token: SecretStr = SecretStr("")
    encrypt_key: SecretStr = SecretStr("")
    webhook_listen: str = "127.0.0.1"  # behind a TLS proxy on this machine; "0.0.0.0" opens it to the network
    webhook_port: int = Field(default=8080, ge=1, le=65535)
    webhook_path: str = "/feishu/events"

    @property
    def enabled(self) -> bool:
        return bool(self.app_id and self.app_secret.get_secret_value())


class GraderSettings(Section):
    """An optional LLM grader: any OpenAI-compatible chat-completions endpoint. Without base_url
    answers are graded locally only."""

    base_url: str = ""                      # e.g. https://api.deepseek.com/v1, http://127.0.0.1:11434/v1
    model: str = ""
    api_key: SecretStr = SecretStr("")      # or QUIZBOT_GRADER_API_KEY
    timeout_seconds: float = Field(default=20, gt=0, le=120)
    daily_limit: int = Field(default=50, ge=0)  # LLM gradings per learner per day; then local

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http(s) URL like https://api.deepseek.com/v1")
        return value.rstrip("/")

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)


class Settings(Section):
    storage: StorageSettings = StorageSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    push: PushSettings = PushSettings()
    bot: BotSettings = BotSettings()
    telegram: TelegramSettings = TelegramSettings()
    feishu: FeishuSettings = FeishuSettings()
    health: HealthSettings = HealthSettings()
    grader: GraderSettings = GraderSettings()


class ConfigError(Exception):
    pass


def _describe(error: dict) -> str:
    *sections, key = [str(p) for p in error["loc"]] or ["?"]
    where = "".join(f"[{s}] " for s in sections)
    message = "unknown key (see config.example.toml)" if error["type"] == "extra_forbidden" else error["msg"]
    return f"{where}{key}: {message.removeprefix('Value error, ')}"


def load_settings(path: Path | None, environ: dict[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    raw: dict = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from e
    for variable, (section, key) in ENVIRONMENT.items():
        if environ.get(variable):
            if not isinstance(raw.setdefault(section, {}), dict):
                break  # reported below as a bad section
            raw[section][key] = environ[variable]
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        lines = [_describe(err) for err in e.errors()]
        raise ConfigError("\n".join(f"{path or 'environment'}: {line}" for line in lines)) from None
