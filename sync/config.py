"""The TOML configuration: parsed and validated once, then passed down explicitly.

Every problem becomes a `ConfigError` whose one-line message names the file and the key,
so the CLI can print it and exit 2 without a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from connectors.urls import url_problem
from mailer.brand import color_problem, logo_problem
from store.db import sqlite_file

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
COMPANY_ID = re.compile(r"^[a-z0-9_-]{1,64}$")  # the store's company_id columns hold 64
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
STORE_BACKENDS = ("sqlite", "postgresql")
Hour = Annotated[int, Field(ge=0, le=23)]
# Ten years either side of the due date: beyond that a reminder date is nonsense, and far
# enough beyond it `due_date + offset` overflows the calendar.
OffsetDays = Annotated[int, Field(ge=-3650, le=3650)]
# Names ZoneInfo opens that are no company's zone: `localtime` is whatever the machine running
# arsync is set to (so each worker could judge windows differently), `posixrules` a template,
# `Factory` the zone of "not set yet".
HOST_ZONES = frozenset({"localtime", "posixrules", "Factory"})


class ConfigError(Exception):
    """A configuration problem, worded for the person who wrote the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # TOML's "\u0000" is a string no store, path or environment variable can hold:
        # PostgreSQL refused the company row with an unexpected error, a path or a variable
        # name was cut short or raised.
        if any(
            "\x00" in item
            for item in (value if isinstance(value, list) else [value])
            if isinstance(item, str)
        ):
            raise ValueError("a NUL character (\\u0000) is not allowed")
        return value


class StoreConfig(_Strict):
    url: str = "sqlite:///arsync.db"  # a relative SQLite path: from the configuration file's folder
    # finished sync runs older than this are pruned, their counts kept (`store.retention`)
    keep_runs_days: Annotated[int, Field(ge=1, le=36500)] = 90
    # settled outbox messages older than this are pruned, rendered body and all (`mailer.retention`)
    keep_outbox_days: Annotated[int, Field(ge=1, le=36500)] = 90

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # The value is not echoed: a database URL may carry a password.
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (sqlite:///PATH or postgresql+psycopg://...)") from None
        if url.get_backend_name() not in STORE_BACKENDS:
            raise ValueError(f"unsupported database {url.get_backend_name()!r} (use sqlite or postgresql)")
        try:
            url.get_dialect().import_dbapi()
        except (NoSuchModuleError, ImportError):
            raise ValueError(f"database driver {url.drivername!r} is not installed") from None
        return value


class LogConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["console", "json"] = "console"


class MailConfig(_Strict):
    transport: Literal["smtp", "file"] = "file"
    from_address: str = "billing@example.com"
    smtp_host: str = "localhost"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str = ""
    smtp_password_env: str = "ARSYNC_SMTP_PASSWORD"
    file_directory: str = "outbox"  # relative to the configuration file's folder (`load_config`)

    @field_validator("from_address")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        # What every message's From header is built from (`email.headerregistry.Address`):
        # refused here, not as an "unexpected error" of each mail command and daemon minute.
        from email.errors import HeaderParseError
        from email.headerregistry import Address

        try:
            Address(addr_spec=value)
        except (ValueError, IndexError, HeaderParseError):
            raise ValueError(f"{value!r} is not an email address (name@example.com)") from None
        return value

    def smtp_password(self) -> str:
        """The SMTP password, read from the environment variable the file names."""
        if not self.smtp_username:
            return ""
        return os.environ.get(self.smtp_password_env, "")

    def folder_shown(self) -> Path:
        """`file_directory` as messages print it: absolute, its `..` and symbolic links resolved
        (`load_config` joined a relative one to the file's folder as written, `/etc/arsync/../outbox`).
        The same place: files are still written to `file_directory` itself."""
        return Path(self.file_directory).resolve()


class DaemonConfig(_Strict):
    """`[daemon]`: how much one `arsync run` worker does at once (SPEC §11)."""

    concurrency: Annotated[int, Field(ge=1, le=256)] = 4  # syncs running at once per worker


class HttpConfig(_Strict):
    """`arsync serve`: where to listen, and the environment variables holding webhook secrets."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    quickbooks_verifier_token_env: str = ""  # empty: /webhooks/quickbooks is off
    xero_webhook_key_env: str = ""  # empty: /webhooks/xero is off

    @field_validator("host")
    @classmethod
    def _named_host(cls, value: str) -> str:
        # bind("") is every interface: /metrics and the webhooks on the public network, where
        # an empty value elsewhere in this file means "none" or the default
        if not value.strip():
            raise ValueError("empty: give the address to listen on (0.0.0.0 for every interface)")
        return value

    def quickbooks_verifier_token(self) -> str:
        return (
            os.environ.get(self.quickbooks_verifier_token_env, "")
            if self.quickbooks_verifier_token_env
            else ""
        )

    def xero_webhook_key(self) -> str:
        return os.environ.get(self.xero_webhook_key_env, "") if self.xero_webhook_key_env else ""


class ConnectionConfig(_Strict):
    kind: str
    environment: Literal["production", "sandbox"] = "production"
    realm_id: str = ""
    tenant_id: str = ""
    client_id: str = ""
    client_secret_env: str = ""
    api_base_url: str = ""
    token_url: str = ""

    @field_validator("api_base_url", "token_url")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        if value:
            check_url(value)
        return value

    def client_secret(self) -> str:
        return os.environ.get(self.client_secret_env, "") if self.client_secret_env else ""


class CompanyConfig(_Strict):
    id: str
    name: str
    timezone: str = "UTC"
    portal_url: str = ""
    plan: Literal["basic", "pro", "plus", "enterprise"] = "pro"
    import_inactive_customers: bool = False
    multi_account_portal: bool = True
    auto_invite: bool = False
    invitation_ttl_days: Annotated[int, Field(ge=1, le=365)] = 14
    sync_interval_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    reminder_offsets_days: list[OffsetDays] = [-3, 0, 7, 14, 30]
    delivery_days: list[str] = ["mon", "tue", "wed", "thu", "fri"]
    delivery_from_hour: Hour = 9
    delivery_to_hour: Hour = 17
    template_dir: str = ""  # relative to the configuration file's folder (`load_config`)
    brand_color: str = ""
    logo_url: str = ""
    attach_statement: bool = False  # reminders carry the customer's PDF statement
    connection: ConnectionConfig

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not COMPANY_ID.match(value):
            raise ValueError(f"company id {value!r} must be 1 to 64 characters of [a-z0-9_-]")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value in HOST_ZONES:  # files of the zone database, not zones: this machine's, or none
            raise ValueError(f"{value!r} is not a time zone name (use one such as 'America/New_York')")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("delivery_days")
    @classmethod
    def _day_names(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one delivery day is needed")
        bad = [d for d in value if d not in DAY_NAMES]
        if bad:
            raise ValueError(f"unknown day {bad[0]!r} (use {', '.join(DAY_NAMES)})")
        return value

    @field_validator("brand_color")
    @classmethod
    def _brand_color(cls, value: str) -> str:
        problem = color_problem(value) if value else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("logo_url")
    @classmethod
    def _logo_url(cls, value: str) -> str:
        problem = logo_problem(value) if value else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("portal_url")
    @classmethod
    def _portal_url(cls, value: str) -> str:
        if value:
            check_url(value)
        return value.rstrip("/")


class Config(_Strict):
    store: StoreConfig = StoreConfig()
    log: LogConfig = LogConfig()
    mail: MailConfig = MailConfig()
    daemon: DaemonConfig = DaemonConfig()
    http: HttpConfig = HttpConfig()
    companies: list[CompanyConfig] = []
    path: str = Field(default="", exclude=True)
    # ids of `companies` read from the store (`arsync company add`), not from the file at `path`
    stored_ids: frozenset[str] = Field(default=frozenset(), exclude=True)

    @model_validator(mode="after")
    def _unique_ids(self) -> Config:
        seen: set[str] = set()
        for index, company in enumerate(self.companies):
            if company.id in seen:
                raise ValueError(f"companies[{index}].id: duplicate company id {company.id!r}")
            seen.add(company.id)
        return self

    def company(self, company_id: str) -> CompanyConfig:
        for company in self.companies:
            if company.id == company_id:
                return company
        raise ConfigError(f"{self.path or 'configuration'}: no company with id {company_id!r}")


def check_url(value: str) -> None:
    """Accept https:// anywhere and plain http:// only for loopback hosts."""
    problem = url_problem(value)
    if problem:
        raise ValueError(problem)


def load_config(path: str | Path, *, require_secrets: bool = True) -> Config:
    """Read, parse and validate the TOML file at `path`."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    config = parse_config(raw, source=str(path), require_secrets=require_secrets)
    return _anchored(config, path.absolute().parent)


def _anchored(config: Config, folder: Path) -> Config:
    """The file's relative paths (a SQLite store's, `mail.file_directory`, each company's
    `template_dir`) made absolute from the configuration file's folder, once, here: the CLI
    and the daemon (working directory / under systemd) then use the same store and folders,
    wherever they were started from."""
    store = config.store
    database = sqlite_file(store.url)
    if database is not None and not database.is_absolute():
        anchored = make_url(store.url).set(database=str(folder / database))
        store = store.model_copy(update={"url": anchored.render_as_string(hide_password=False)})
    directory = Path(config.mail.file_directory)
    mail = config.mail
    if not directory.is_absolute():
        mail = mail.model_copy(update={"file_directory": str(folder / directory)})
    companies = [
        company.model_copy(update={"template_dir": str(folder / company.template_dir)})
        if company.template_dir and not Path(company.template_dir).is_absolute()
        else company
        for company in config.companies
    ]
    return config.model_copy(update={"store": store, "mail": mail, "companies": companies})


def parse_config(raw: dict, *, source: str = "configuration", require_secrets: bool = True) -> Config:
    """Validate an already-parsed TOML document."""
    for internal in ("path", "stored_ids"):  # where the companies were read from: not keys of the file
        if internal in raw:
            raise ConfigError(f"{source}: {internal}: unknown key")
    try:
        config = Config.model_validate({**raw, "path": source})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {first_error(exc)}") from None
    if require_secrets:
        from sync.checks import check_secrets  # the checks import this module's models

        check_secrets(config, smtp=True)
    return config


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = _key_path(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    if key and message.startswith(key):
        return message
    return f"{key}: {message}" if key else message


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "literal[", "tuple[")):
            # Quoted when not a bare key: repr() escapes line breaks and other unprintable
            # characters, so a key holding one cannot break the one-line message.
            name = str(part) if BARE_KEY.fullmatch(str(part)) else repr(str(part))
            out += f".{name}" if out else name
    return out
