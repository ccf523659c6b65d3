"""Bad configuration, whatever its shape, is exit 2 with one line naming the file; never a traceback.

Random TOML documents, mutations of a valid configuration, random bytes and random text
go through the real CLI (`main(["--config", path, "status"])`). The store is SQLite in a
temporary directory, migrated once, so a configuration the parser accepts reaches exit 0.
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import logging
import re
import tomllib
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from store.db import make_engine, upgrade
from sync.cli import main
from sync.config import ConfigError, load_config, parse_config
from sync.settings import company_policy

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

# ---------------------------------------------------------------------------------------------
# A small TOML writer (the standard library only reads TOML): tables as [sections], arrays of
# tables as [[sections]], everything below them inline.


def toml_string(text: str) -> str:
    escaped = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else "\\" + c if c in '"\\' else c for c in text
    )
    return f'"{escaped}"'


def toml_key(key: str) -> str:
    return key if BARE_KEY.fullmatch(key) else toml_string(key)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_document(doc: dict) -> str:
    lines = []
    sections = []
    for key, value in doc.items():
        if isinstance(value, dict):
            sections.append(f"[{toml_key(key)}]")
            sections += [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:
                sections.append(f"[[{toml_key(key)}]]")
                sections += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
        else:
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines + sections) + "\n"


# ---------------------------------------------------------------------------------------------
# Running the CLI on one file, and the invariants every run must keep.

_names = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory with a migrated SQLite store; the CWD during the module (relative paths)."""
    directory = tmp_path_factory.mktemp("config-fuzz")
    engine = make_engine(f"sqlite:///{directory / 'arsync.db'}")
    upgrade(engine)
    engine.dispose()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        patch.delenv("ARSYNC_DEBUG", raising=False)
        patch.delenv("ARSYNC_CONFIG", raising=False)
        patch.setenv("FUZZ_CLIENT_SECRET", "not-a-real-secret")
        yield directory
    root.handlers[:], root.level = saved
    structlog.reset_defaults()


def store_url(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'arsync.db'}"


def run_status(workdir: Path, content: str | bytes) -> tuple[Path, int, str]:
    path = workdir / f"fuzz-{next(_names)}.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--config", str(path), "status"])
    return path, code, err.getvalue()


def assert_clean_outcome(path: Path, code: int, err: str) -> None:
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err, err
    assert "unexpected error" not in err, err  # the CLI's last-resort branch: a bug
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
        assert str(path) in err, err
    if code == 1:
        assert "arsync db upgrade" in err, err


def assert_exit_2_iff_refused(path: Path, code: int, err: str) -> None:
    """Exit 2 exactly when the parser refuses the file (and then with its message)."""
    try:
        load_config(path, require_secrets=False)  # `status` needs no secret (SPEC §6, issue 16)
    except ConfigError as exc:
        assert code == 2, (code, err)
        assert str(exc) in err
    else:
        assert code == 0, (code, err)


# ---------------------------------------------------------------------------------------------
# Strategies

KNOWN_KEYS = (
    "store", "url", "log", "level", "format", "mail", "transport", "from_address", "smtp_port",
    "smtp_security", "smtp_username", "smtp_password_env", "companies", "id", "name", "timezone",
    "portal_url", "plan", "connection", "kind", "realm_id", "client_secret_env", "api_base_url",
    "delivery_days", "delivery_from_hour", "delivery_to_hour", "reminder_offsets_days",
    "invitation_ttl_days", "path",
)  # fmt: skip
keys = st.sampled_from(KNOWN_KEYS) | st.text(min_size=1, max_size=12)
scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.dates()
    | st.datetimes(timezones=st.sampled_from([None, UTC]))
    | st.times()
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=5)


def valid_config(workdir: Path) -> dict:
    return {
        "store": {"url": store_url(workdir)},
        "log": {"level": "warning", "format": "json"},
        "mail": {"transport": "file", "file_directory": "outbox"},
        "companies": [
            {
                "id": "acme",
                "name": "Acme Landscaping",
                "timezone": "America/New_York",
                "portal_url": "https://portal.acme.example",
                "plan": "pro",
                "multi_account_portal": True,
                "invitation_ttl_days": 14,
                "reminder_offsets_days": [-3, 0, 7, 14, 30],
                "delivery_days": ["mon", "tue", "wed", "thu", "fri"],
                "delivery_from_hour": 9,
                "delivery_to_hour": 17,
                "connection": {
                    "kind": "quickbooks",
                    "realm_id": "9130000000000000",
                    "client_secret_env": "FUZZ_CLIENT_SECRET",
                },
            },
            {
                "id": "globex",
                "name": "Globex",
                "timezone": "Australia/Sydney",
                "delivery_from_hour": 22,
                "delivery_to_hour": 5,
                "connection": {"kind": "xero", "tenant_id": "t-1"},
            },
        ],
    }


COMPANY_FIELDS = (
    "id", "name", "timezone", "portal_url", "plan", "import_inactive_customers", "multi_account_portal",
    "auto_invite", "invitation_ttl_days", "sync_interval_minutes", "reminder_offsets_days",
    "delivery_days", "delivery_from_hour", "delivery_to_hour", "template_dir",
)  # fmt: skip
wrong_values = (
    values
    | st.integers(min_value=-100, max_value=100)
    | st.sampled_from(
        [
            "", "Mars/Olympus_Mons", "America", "x" * 300, "UTC", "Europe/Paris", "../../etc/passwd",
            "Acme Inc", "acme",
            "ACME", "a b", "gold", "http://portal.example", "https://", "ftp://x", "http://127.0.0.1:9",
            "someday", "mon", -1, 24, 0, 23, 10**30, [], ["mon", "mon"], ["sun"], [10**12], [-(10**12)],
        ]
    )
)  # fmt: skip


VALID_CHANGES = [
    ("timezone", "Europe/Paris"), ("timezone", "UTC"), ("delivery_from_hour", 0), ("delivery_to_hour", 23),
    ("plan", "basic"), ("plan", "enterprise"), ("reminder_offsets_days", []), ("reminder_offsets_days", [0]),
    ("reminder_offsets_days", [-3650, 3650]), ("delivery_days", ["sun"]), ("name", "Café <b>Müller</b>\r\n"),
    ("portal_url", "http://127.0.0.1:8080/"), ("invitation_ttl_days", 365), ("template_dir", "nowhere"),
]  # fmt: skip


@st.composite
def mutated_configs(draw, workdir: Path, *, valid_only: bool = False) -> dict:
    """The valid configuration with 0-3 changes; each change may break what a later one expects,
    so every step looks at the document as it now is."""
    config = valid_config(workdir)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        companies = config.get("companies")
        companies = [c for c in companies if isinstance(c, dict)] if isinstance(companies, list) else []
        company = draw(st.sampled_from(companies)) if companies else None
        if valid_only:
            if company is not None:
                field, value = draw(st.sampled_from(VALID_CHANGES))
                company[field] = value
            continue
        kind = draw(
            st.sampled_from(
                ["set-company", "set-connection", "unknown-key", "drop-key", "duplicate", "set-section",
                 "set-valid"]
            )
        )  # fmt: skip
        if company is not None and kind == "set-valid":
            field, value = draw(st.sampled_from(VALID_CHANGES))
            company[field] = value
        elif company is not None and kind == "set-company":
            company[draw(st.sampled_from(COMPANY_FIELDS))] = draw(wrong_values)
        elif company is not None and kind == "set-connection":
            field = draw(
                st.sampled_from(["kind", "environment", "realm_id", "client_secret_env", "api_base_url"])
            )
            if not isinstance(company.get("connection"), dict):
                company["connection"] = {}
            company["connection"][field] = draw(wrong_values)
        elif company is not None and kind == "duplicate":
            config["companies"].append(copy.deepcopy(company))
        elif company is not None and kind == "drop-key":
            company.pop(draw(st.sampled_from(["id", "name", "connection", "timezone"])), None)
        elif kind == "unknown-key":
            tables = [
                t for t in (config, config.get("log"), config.get("mail"), company) if isinstance(t, dict)
            ]
            draw(st.sampled_from(tables))[draw(keys)] = draw(values)
        else:
            section = draw(st.sampled_from(["store", "log", "mail"]))
            field = {"store": "url", "log": "level", "mail": "smtp_port"}[section]
            if not isinstance(config.get(section), dict):
                config[section] = {}
            config[section][field] = draw(wrong_values)
    return config


# ---------------------------------------------------------------------------------------------
# Properties


@FUZZ
@given(doc=documents)
def test_random_toml_documents(workdir, doc):
    path, code, err = run_status(workdir, toml_document(doc))
    event(f"exit {code}")
    assert_clean_outcome(path, code, err)
    assert_exit_2_iff_refused(path, code, err)


@FUZZ
@given(data=st.data())
def test_mutations_of_a_valid_configuration(workdir, data):
    config = data.draw(mutated_configs(workdir))
    path, code, err = run_status(workdir, toml_document(config))
    event(f"exit {code}")
    assert_clean_outcome(path, code, err)
    assert_exit_2_iff_refused(path, code, err)


@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_valid_variations_are_accepted(workdir, data):
    config = data.draw(mutated_configs(workdir, valid_only=True))
    path, code, err = run_status(workdir, toml_document(config))
    assert (code, err) == (0, "")


@FUZZ
@given(data=st.data())
def test_an_accepted_configuration_gives_working_policies(workdir, data):
    """What the parser accepts, the rules accept: validated once, never failing later."""
    config = data.draw(mutated_configs(workdir))
    try:
        parsed = parse_config(config, source="fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        assert len(str(exc).splitlines()) == 1
        return
    for company in parsed.companies:
        policy = company_policy(company)
        # Reminder dates must be computable for any realistic due date.
        for offset in policy.reminder_offsets_days:
            assert date(2000, 1, 1).toordinal() + offset > 0
            date.fromordinal(date(2100, 1, 1).toordinal() + offset)


@FUZZ
@given(content=st.binary(max_size=200))
def test_random_bytes(workdir, content):
    path, code, err = run_status(workdir, content)
    event(f"exit {code}")
    assert_clean_outcome(path, code, err)
    assert_exit_2_iff_refused(path, code, err)


@FUZZ
@given(prefix=st.binary(max_size=40), bad=st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"]))
def test_invalid_utf8_is_exit_2_naming_the_file(workdir, prefix, bad):
    path, code, err = run_status(workdir, b'[store]\nurl = "' + prefix + bad + b'"\n')
    assert code == 2
    assert_clean_outcome(path, code, err)


@FUZZ
@given(text=st.text(alphabet=st.sampled_from("[]{}=.\"'#\n ,abcdeilnorstu0123456789-+:_\\"), max_size=80))
def test_toml_like_text(workdir, text):
    path, code, err = run_status(workdir, text)
    event(f"exit {code}")
    assert_clean_outcome(path, code, err)
    assert_exit_2_iff_refused(path, code, err)


def test_a_valid_configuration_is_exit_0(workdir):
    path, code, err = run_status(workdir, toml_document(valid_config(workdir)))
    assert (code, err) == (0, "")


def test_an_unmigrated_store_is_exit_1_saying_what_to_run(workdir):
    config = valid_config(workdir)
    config["store"]["url"] = f"sqlite:///{workdir / 'empty.db'}"
    path, code, err = run_status(workdir, toml_document(config))
    assert code == 1
    assert_clean_outcome(path, code, err)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["store"].update(url="not a url"), "store.url: "),
        (lambda c: c["store"].update(url="mysql://u@h/db"), "store.url: "),
        (lambda c: c.update(path="elsewhere.toml"), "path: unknown key"),
        (lambda c: c["companies"][0].update({"a\nb": 1}), "unknown key"),
        (lambda c: c["companies"][0].update(delivery_days=[]), "companies[0].delivery_days: "),
        (lambda c: c["companies"][0].update(timezone="America"), "unknown time zone 'America'"),
        (lambda c: c["companies"][0].update(timezone="x" * 300), "companies[0].timezone: unknown time zone"),
        (lambda c: c["companies"][0].update(reminder_offsets_days=[10**9]), "reminder_offsets_days"),
        (lambda c: c["companies"][0].update(timezone="localtime"), "'localtime' is not a time zone name"),
        (lambda c: c["companies"][0].update(timezone="posixrules"), "'posixrules' is not a time zone name"),
    ],
    ids=["unparsable-store-url", "unsupported-store", "path-key", "key-with-newline", "no-delivery-day",
         "zone-folder", "zone-name-too-long", "offset-out-of-range", "host-zone", "zone-template"],
)  # fmt: skip
def test_found_by_fuzzing(workdir, change, expected):
    config = valid_config(workdir)
    change(config)
    path, code, err = run_status(workdir, toml_document(config))
    assert code == 2, err
    assert expected in err
    assert_clean_outcome(path, code, err)


@FUZZ
@given(doc=documents.filter(lambda d: "nan" not in repr(d)))
def test_the_toml_writer_round_trips(workdir, doc):
    """The documents above reach the validator: they are TOML, and the TOML they mean."""
    assert tomllib.loads(toml_document(doc)) == doc
    assert tomllib.loads(toml_document(valid_config(workdir))) == valid_config(workdir)
