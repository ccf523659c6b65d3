"""Checks of the configuration that the commands using a setting make, not the loading.

A secret's environment variable, a connector kind a plug-in provides, a template folder, the
portal URL an invitation links to: facts of the machine or needs of one command, so `status`
or `history` work on any shell. Each refusal is a `ConfigError` naming the file and the key
(or the stored company), exit 2 like every configuration error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from portal_rules.eligibility import plan_includes_portal
from sync.config import CompanyConfig, Config, ConfigError


def company_key(config: Config, index: int, company: CompanyConfig, key: str) -> str:
    """Where a company's `key` is written, for a message: the file and `companies[i].key`, or
    the stored company (`arsync company add`), which the file does not hold."""
    if company.id in config.stored_ids:
        return f"stored company {company.id!r} (`arsync company add`): {key}"
    return f"{config.path or 'configuration'}: companies[{index}].{key}"


def check_http_secrets(config: Config) -> None:
    """`arsync serve` only: the webhook secrets the file names must be set (exit 2 otherwise)."""
    for key in ("quickbooks_verifier_token_env", "xero_webhook_key_env"):
        env = getattr(config.http, key)
        if env and not os.environ.get(env):
            state = "is empty" if env in os.environ else "is not set"  # an empty key signs nothing
            raise ConfigError(f"{config.path}: http.{key}: environment variable {env} {state}")


def check_secrets(config: Config, company_ids: Iterable[str] | None = None, *, smtp: bool = False) -> None:
    """Refuse, naming the key, when a secret about to be used is not in the environment.

    Loading validates the whole file without needing the secrets: only the commands that
    call an accounting API (`company_ids`: those companies; None: all) or log in to the
    SMTP server (`smtp`) ask for them, so `status` or `history` work on any shell. Those
    delivering mail (`smtp`) with the file transport also need `mail.file_directory` to be a
    folder (or not there yet: it is made).
    """
    source = config.path or "configuration"
    wanted = None if company_ids is None else set(company_ids)
    for index, company in enumerate(config.companies):
        env = company.connection.client_secret_env
        if (wanted is None or company.id in wanted) and env and env not in os.environ:
            key = company_key(config, index, company, "connection.client_secret_env")
            raise ConfigError(f"{key}: environment variable {env} is not set")
    mail = config.mail
    if smtp and mail.transport == "smtp" and mail.smtp_username and mail.smtp_password_env not in os.environ:
        raise ConfigError(
            f"{source}: mail.smtp_password_env: environment variable {mail.smtp_password_env} is not set"
        )
    folder = Path(mail.file_directory)
    if smtp and mail.transport == "file" and folder.exists() and not folder.is_dir():
        # each message would be "to retry" for ever (FileExistsError), the command exiting 0
        raise ConfigError(f"{source}: mail.file_directory: {str(mail.folder_shown())!r} is not a directory")


# The id a built-in connection cannot call its API without (SPEC 7: "realm_id # quickbooks").
CONNECTION_ID = {"quickbooks": "realm_id", "xero": "tenant_id"}


def check_kinds(config: Config, company_ids: Iterable[str] | None = None, *, ids: bool = False) -> None:
    """Refuse, naming the key, a company about to be synced (`company_ids`; None: all) whose
    `connection.kind` no connector answers to, or (`ids`: `arsync sync`, which syncs them now)
    a built-in connection without its realm or tenant id: a typo or an omission is a
    configuration error (exit 2), not a failed sync recorded in the history.

    Checked by the commands that call an accounting API, not at load: a plug-in's kind may be
    installed on the workers only, and `status` or `history` work on any machine.
    """
    from connectors.registry import BUILTIN, UnknownConnector, factory_for

    wanted = None if company_ids is None else set(company_ids)
    for index, company in enumerate(config.companies):
        kind = company.connection.kind
        if wanted is not None and company.id not in wanted:
            continue
        if kind not in BUILTIN:
            try:
                factory_for(kind)
            except UnknownConnector as exc:
                raise ConfigError(
                    f"{company_key(config, index, company, 'connection.kind')}: {exc}"
                ) from None
        needed = CONNECTION_ID.get(kind) if ids else None
        if needed and not getattr(company.connection, needed).strip():
            key = company_key(config, index, company, f"connection.{needed}")
            raise ConfigError(f"{key}: required for a {kind} connection")


def check_portal_url(config: Config, company_id: str) -> None:
    """Refuse, naming the key, to invite a company's contacts without its `portal_url`: the
    link would be a bare `/invite/TOKEN` no customer can open, and a new invitation supersedes
    the contact's earlier (working) ones."""
    for index, company in enumerate(config.companies):
        if company.id == company_id and not company.portal_url:
            key = company_key(config, index, company, "portal_url")
            raise ConfigError(f"{key}: required to invite (the link is {{portal_url}}/invite/...)")


def check_portal_plan(config: Config, company_id: str) -> None:
    """Refuse, naming the key, to invite a company's contacts when its `plan` does not include
    the portal (`basic`): nobody is eligible (SPEC section 2), also before the next sync has
    decided the stored contacts again with the new plan."""
    for index, company in enumerate(config.companies):
        if company.id == company_id and not plan_includes_portal(company.plan):
            key = company_key(config, index, company, "plan")
            raise ConfigError(
                f"{key}: {company.plan!r} does not include the portal "
                "(invitations need pro, plus or enterprise)"
            )


def check_template_dirs(config: Config, company_ids: Iterable[str] | None = None) -> None:
    """Refuse, naming the key, when a company about to render mail (`company_ids`; None: all)
    names a `template_dir` that is not a directory: a typo must not fall back to the
    packaged templates, nor fail later as an error of the work.

    Like the secrets, checked by the commands that render mail, not at load: the folder is
    a fact of the machine, and `status` or `history` work on any shell.
    """
    wanted = None if company_ids is None else set(company_ids)
    for index, company in enumerate(config.companies):
        folder = company.template_dir
        if (wanted is None or company.id in wanted) and folder and not Path(folder).is_dir():
            key = company_key(config, index, company, "template_dir")
            raise ConfigError(f"{key}: {folder!r} is not a directory")
