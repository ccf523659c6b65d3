"""The effective companies: the configuration file's, then those stored with `arsync company add`.

Everything that acts on "every company" (the daemon, `status`, `sync`, mail planning) goes
through `effective_companies`, so a tenant onboarded into the store is treated exactly
like one written in the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import Engine

from store.glance import stored_definitions
from sync.config import CompanyConfig, Config, ConfigError, first_error, parse_config


def stored_companies(engine: Engine) -> list[CompanyConfig]:
    """The companies in the store; a definition that no longer validates is an error naming it."""
    out = []
    for company_id, definition in stored_definitions(engine).items():
        try:
            out.append(CompanyConfig.model_validate(definition))
        except ValidationError as exc:
            raise ConfigError(
                f"stored company {company_id!r}: {first_error(exc)} "
                f"(`arsync company remove {company_id}`, then add it again corrected)"
            ) from None
    return out


def effective_companies(config: Config, engine: Engine) -> list[CompanyConfig]:
    """The file's companies followed by the stored ones; an id in both is a ConfigError."""
    stored = stored_companies(engine)
    check_no_overlap(config, [c.id for c in stored])
    return [*config.companies, *stored]


def check_no_overlap(config: Config, stored_ids: list[str]) -> None:
    in_file = {c.id for c in config.companies}
    for company_id in stored_ids:
        if company_id in in_file:
            raise ConfigError(
                f"company {company_id!r} is both in {config.path or 'the configuration'} and in the store; "
                f"remove it from one (`arsync company remove {company_id}`)"
            )


def load_company_file(path: Path) -> dict[str, tuple[dict, CompanyConfig]]:
    """A file of `[[companies]]` tables, validated exactly like the main configuration.

    By id: the table as written (what the store keeps) and the validated company.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    for key in raw:
        if key != "companies":
            raise ConfigError(f"{path}: {key}: unknown key (a company file holds only [[companies]] tables)")
    companies = parse_config(raw, source=str(path), require_secrets=False).companies
    if not companies:
        raise ConfigError(f"{path}: companies: no [[companies]] table in the file")
    folder = path.absolute().parent
    return {
        company.id: _anchored(table, company, folder)
        for table, company in zip(raw["companies"], companies, strict=True)
    }


def _anchored(table: dict, company: CompanyConfig, folder: Path) -> tuple[dict, CompanyConfig]:
    """A relative `template_dir` taken from the company file's folder, as the main file's
    are from its own (`sync.config.load_config`), and stored so: the workers and admins
    reading the stored company run from any folder."""
    if not company.template_dir or Path(company.template_dir).is_absolute():
        return table, company
    anchored = str(folder / company.template_dir)
    return {**table, "template_dir": anchored}, company.model_copy(update={"template_dir": anchored})
