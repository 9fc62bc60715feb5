"""The ``[azure]`` table of config.toml: defaults, every key, every error, the SAS kept secret."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from core.azure import settings as settings_module
from core.azure.api_versions import ApiVersions
from core.azure.budget import BucketLimit, BudgetLimits
from core.azure.settings import (
    OUTPUT_CONTAINER_ENV,
    AzureSettings,
    SettingsError,
    load_azure_settings,
    redacted_url,
)

SIG = "CANARYsig0123456789abcdefXYZ%3D"
"""A planted signature: it must never show up in an error message or a repr."""
SUB_A = "11111111-1111-4111-8111-111111111111"
SUB_B = "22222222-2222-4222-8222-222222222222"
CLIENT_ID = "33333333-3333-4333-8333-333333333333"
ACCOUNT = "https://fleetrunout.blob.core.windows.net"
SAS = f"sv=2022-11-02&sr=c&sp=racwl&se=2099-01-01T00:00:00Z&sig={SIG}"
CONTAINER_SAS = f"{ACCOUNT}/output?{SAS}"


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(OUTPUT_CONTAINER_ENV, raising=False)
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    """The error for a config.toml holding ``text``, after the file's path it starts with."""
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as caught:
        load_azure_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message.removeprefix(f"{path}: ")


# ----------------------------------------------------------------------------- defaults


def test_no_config_file_gives_the_defaults_unconfigured(tmp_path: Path) -> None:
    found = load_azure_settings()  # config_dir() is FLEETRUN_CONFIG_DIR = tmp_path
    assert found == AzureSettings()
    assert found.configured is False
    assert found.subscriptions == ()
    assert found.arm_endpoint == "https://management.azure.com"
    assert found.output_container == ""
    assert found.output_identity == ""
    assert found.cleanup == "delete"
    assert found.poll_interval == 5.0
    assert found.api_versions == ApiVersions("2025-04-01", "2025-01-13", "2024-04-01")
    assert found.throttle == BudgetLimits(BucketLimit(250, 25.0), BucketLimit(200, 10.0),
                                          BucketLimit(200, 10.0), 0.05)


def test_other_tables_do_not_configure_azure(tmp_path: Path) -> None:
    write(tmp_path, "[ui]\ntheme = 'dark'\n")
    assert load_azure_settings() == AzureSettings(configured=False)


def test_an_empty_azure_table_is_configured_with_defaults(tmp_path: Path) -> None:
    assert load_azure_settings(write(tmp_path, "[azure]\n")) == AzureSettings(configured=True)


def test_the_default_path_is_config_toml_in_the_config_dir(tmp_path: Path) -> None:
    write(tmp_path, "[azure]\ncleanup = 'keep'\n")
    assert load_azure_settings().cleanup == "keep"


# ----------------------------------------------------------------------------- every key


def test_every_key_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, f"""
[azure]
subscriptions = ["{SUB_A}", "{SUB_B}"]
arm_endpoint = "https://management.usgovcloudapi.net/"
output_container = "{CONTAINER_SAS}"
cleanup = "keep"
poll_interval = 2.5

[azure.api_versions]
compute = "2024-11-01"
hybridcompute = "2024-11-10-preview"
resourcegraph = "2022-10-01"

[azure.throttle]
reads = {{ capacity = 100, refill_per_second = 10 }}
writes = {{ capacity = 50 }}
deletes = {{ refill_per_second = 2.5 }}
reserve = 0.1
""")
    found = load_azure_settings(path)
    assert found.configured is True
    assert found.subscriptions == (SUB_A, SUB_B)
    assert found.arm_endpoint == "https://management.usgovcloudapi.net"
    assert found.output_container == CONTAINER_SAS
    assert found.output_identity == ""
    assert found.uses_managed_identity is False
    assert found.cleanup == "keep"
    assert found.poll_interval == 2.5
    assert found.api_versions == ApiVersions("2024-11-01", "2024-11-10-preview", "2022-10-01")
    # A bucket member left out keeps ARM's default for that bucket.
    assert found.throttle == BudgetLimits(BucketLimit(100, 10.0), BucketLimit(50, 10.0),
                                          BucketLimit(200, 2.5), 0.1)


def test_a_subscription_listed_twice_is_queried_once(tmp_path: Path) -> None:
    path = write(tmp_path, f'[azure]\nsubscriptions = ["{SUB_A}", "{SUB_A.upper()}", '
                           f'" {SUB_B} "]\n')
    assert load_azure_settings(path).subscriptions == (SUB_A, SUB_B)


@pytest.mark.parametrize("identity, stored", [
    ("system", "system"), ("System", "system"), (CLIENT_ID.upper(), CLIENT_ID),
])
def test_managed_identity_takes_a_plain_container_url(
    tmp_path: Path, identity: str, stored: str
) -> None:
    path = write(tmp_path, f'[azure]\noutput_identity = "{identity}"\n'
                           f'output_container = "{ACCOUNT}/output/"\n')
    found = load_azure_settings(path)
    assert found.output_identity == stored
    assert found.uses_managed_identity is True
    assert found.output_container == f"{ACCOUNT}/output"


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:10000/devstoreaccount1/output?{SAS}",  # Azurite, path style
    f"http://localhost:8443/fleetrunsandbox/fleetrun?{SAS}",  # the sandbox served on loopback
    f"{ACCOUNT}/output?sv=2022-11-02&ss=b&srt=co&sp=rwdlacup&se=2099-01-01&sig={SIG}",  # account
])
def test_loopback_path_style_and_account_sas_urls_are_accepted(tmp_path: Path, url: str) -> None:
    found = load_azure_settings(write(tmp_path, f'[azure]\noutput_container = "{url}"\n'))
    assert found.output_container == url


def test_the_smallest_bucket_a_reserve_allows_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "[azure.throttle]\nreserve = 0.5\nwrites = { capacity = 2 }\n")
    assert load_azure_settings(path).throttle.writes == BucketLimit(2, 10.0)


def test_http_arm_endpoint_only_on_loopback(tmp_path: Path) -> None:
    path = write(tmp_path, '[azure]\narm_endpoint = "http://127.0.0.1:8080"\n')
    assert load_azure_settings(path).arm_endpoint == "http://127.0.0.1:8080"
    message = error_of(tmp_path, '[azure]\narm_endpoint = "http://management.azure.com"\n')
    assert message.startswith("azure.arm_endpoint: ")
    assert "https" in message


# ----------------------------------------------------------------------------- errors


BAD_VALUES = [
    ('subscriptions = "abc"', "azure.subscriptions", "list of subscription ids"),
    ('subscriptions = ["not-a-guid"]', "azure.subscriptions[0]", "GUID"),
    (f'subscriptions = ["{SUB_A}", 7]', "azure.subscriptions[1]", "GUID"),
    ("arm_endpoint = 5", "azure.arm_endpoint", "https URL"),
    ('arm_endpoint = "ftp://management.azure.com"', "azure.arm_endpoint", "https URL"),
    ('arm_endpoint = "https://management.azure.com/subscriptions"', "azure.arm_endpoint",
     "scheme and host only"),
    ("output_container = 1", "azure.output_container", "container URL"),
    (f'output_container = "http://fleetrunout.blob.core.windows.net/output?{SAS}"',
     "azure.output_container", "https"),
    (f'output_container = "{ACCOUNT}/output/blob.txt?{SAS}"', "azure.output_container",
     "/CONTAINER"),
    (f'output_container = "{ACCOUNT}/Bad_Name?{SAS}"', "azure.output_container",
     "lowercase letters"),
    (f'output_container = "{ACCOUNT}/output"', "azure.output_container", "racwl"),
    (f'output_container = "{ACCOUNT}/output?sv=1&sr=c&sp=rw&sig={SIG}"',
     "azure.output_container", "lack a, c, l"),
    (f'output_container = "{ACCOUNT}/output?sv=1&sr=b&sp=racwl&sig={SIG}"',
     "azure.output_container", "sr=c"),
    (f'output_container = "{ACCOUNT}/output?sv=1&sr=c&sp=racwl&se=2001-01-01&sig={SIG}"',
     "azure.output_container", "expired"),
    (f'output_container = "{ACCOUNT}/output?sv=1&sr=c&sp=racwl&se=soon&sig={SIG}"',
     "azure.output_container", "ISO 8601"),
    (f'output_identity = "system"\noutput_container = "{CONTAINER_SAS}"',
     "azure.output_container", "without a SAS"),
    ('output_identity = "me"', "azure.output_identity", '"system"'),
    ("output_identity = false", "azure.output_identity", "client id"),
    ('cleanup = "remove"', "azure.cleanup", "allowed: delete, keep"),
    ("cleanup = true", "azure.cleanup", "allowed: delete, keep"),
    ("poll_interval = 0", "azure.poll_interval", "above 0"),
    ("poll_interval = -1.5", "azure.poll_interval", "above 0"),
    ('poll_interval = "5"', "azure.poll_interval", "above 0"),
    ("poll_interval = true", "azure.poll_interval", "above 0"),
    ("poll_interval = nan", "azure.poll_interval", "above 0"),
    ("poll_interval = inf", "azure.poll_interval", "above 0"),
    ("api_versions = 3", "azure.api_versions", "must be a table"),
    ("api_versions = { compute = 'latest' }", "azure.api_versions.compute", "YYYY-MM-DD"),
    ("api_versions = { resourcegraph = 2024 }", "azure.api_versions.resourcegraph",
     "YYYY-MM-DD"),
    ('throttle = "fast"', "azure.throttle", "must be a table"),
    ("throttle = { reads = 5 }", "azure.throttle.reads", "must be a table"),
    ("throttle = { reads = { capacity = 0 } }", "azure.throttle.reads.capacity",
     "whole number"),
    ("throttle = { writes = { capacity = 2.5 } }", "azure.throttle.writes.capacity",
     "whole number"),
    ("throttle = { deletes = { refill_per_second = 0 } }",
     "azure.throttle.deletes.refill_per_second", "above 0"),
    ("throttle = { reserve = 1 }", "azure.throttle.reserve", "up to (not including) 1"),
    ("throttle = { reserve = -0.1 }", "azure.throttle.reserve", "from 0"),
    # The budget holds capacity * reserve back and sends only with a whole token beyond it.
    ("throttle = { reads = { capacity = 1 } }", "azure.throttle.reads.capacity", "at least 2"),
    ("throttle = { reserve = 0.5, writes = { capacity = 1 } }", "azure.throttle.writes.capacity",
     "at least 2"),
    ("throttle = { reserve = 0.6, deletes = { capacity = 2 } }",
     "azure.throttle.deletes.capacity", "at least 3"),
]


@pytest.mark.parametrize("line, field, allowed", BAD_VALUES,
                         ids=[f"{field}-{i}" for i, (_, field, _) in enumerate(BAD_VALUES)])
def test_every_bad_value_names_its_key_and_what_is_allowed(
    tmp_path: Path, line: str, field: str, allowed: str
) -> None:
    message = error_of(tmp_path, f"[azure]\n{line}\n")
    assert message.startswith(f"{field}: ") or message.startswith(f"{field} "), message
    assert allowed in message
    assert SIG not in message


@pytest.mark.parametrize("text, key, allowed", [
    ("[azure]\nsubscription = []\n", "azure.subscription", "subscriptions, arm_endpoint"),
    ("[azure.api_versions]\nnetwork = '2024-01-01'\n", "azure.api_versions.network",
     "compute, hybridcompute, resourcegraph"),
    ("[azure.throttle]\nburst = 3\n", "azure.throttle.burst", "reads, writes, deletes, reserve"),
    ("[azure.throttle]\nreads = { size = 3 }\n", "azure.throttle.reads.size",
     "capacity, refill_per_second"),
])
def test_unknown_keys_are_named_with_the_allowed_ones(
    tmp_path: Path, text: str, key: str, allowed: str
) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"{key}: unknown key"), message
    assert allowed in message


def test_azure_that_is_not_a_table(tmp_path: Path) -> None:
    assert error_of(tmp_path, 'azure = "yes"\n').startswith("azure: must be a table")


def test_a_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[azure]\ncleanup = \n")
    assert message.startswith("not valid TOML: ")
    assert "line 2" in message


def test_an_unreadable_config_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()
    with pytest.raises(SettingsError) as caught:
        load_azure_settings()
    assert str(caught.value) == f"{tmp_path / 'config.toml'}: is a directory; config.toml " \
        "must be a file"


# ----------------------------------------------------------------------------- the SAS


SAS_LEAKS = [
    f'output_container = "{ACCOUNT}/output/blob.txt?{SAS}"',
    f'output_container = "http://example.com/output?{SAS}"',
    f'output_container = "{ACCOUNT}/output?sv=1&sr=b&sp=racwl&sig={SIG}"',
    f'output_container = "{ACCOUNT}/output?sv=1&sp=r&sig={SIG}"',
    f'output_container = "{ACCOUNT}/output?sv=1&sr=c&sp=racwl&se=2001-01-01&sig={SIG}"',
    f'output_identity = "system"\noutput_container = "{CONTAINER_SAS}"',
    f'output_identity = "{CONTAINER_SAS}"',  # the SAS in the wrong key
    f'arm_endpoint = "{CONTAINER_SAS}"',
    f'subscriptions = ["{CONTAINER_SAS}"]',
    f'output_containr = "{CONTAINER_SAS}"',  # a misspelt key
    f'cleanup = "{CONTAINER_SAS}"',
]


@pytest.mark.parametrize("line", SAS_LEAKS)
def test_the_sas_signature_never_appears_in_an_error(tmp_path: Path, line: str) -> None:
    message = error_of(tmp_path, f"[azure]\n{line}\n")
    assert SIG not in message
    assert SIG.lower() not in message.lower()


def test_the_sas_signature_never_appears_in_repr_or_str(tmp_path: Path) -> None:
    found = load_azure_settings(write(tmp_path, f'[azure]\noutput_container = "{CONTAINER_SAS}"'))
    assert found.output_container == CONTAINER_SAS  # usable, just never shown
    for shown in (repr(found), str(found), f"{found}", repr([found])):
        assert SIG not in shown
        assert "sig=REDACTED" in shown
        assert "sp=racwl" in shown  # the rest of the URL stays readable


def test_redacted_url_replaces_only_the_signature() -> None:
    shown = redacted_url(f"{ACCOUNT}/c/b?sv=1&SIG={SIG}&sp=r")
    assert shown == f"{ACCOUNT}/c/b?sv=1&SIG=REDACTED&sp=r"
    assert redacted_url(f"sig={SIG}") == "sig=REDACTED"
    assert redacted_url(f"{ACCOUNT}/c") == f"{ACCOUNT}/c"


# ----------------------------------------------------------------------------- environment


def test_the_environment_overrides_the_output_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = f"{ACCOUNT}/from-env?{SAS}"
    monkeypatch.setenv(OUTPUT_CONTAINER_ENV, from_env)
    path = write(tmp_path, f'[azure]\noutput_container = "{ACCOUNT}/from-file?{SAS}"\n')
    assert load_azure_settings(path).output_container == from_env


def test_the_environment_alone_sets_the_output_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTPUT_CONTAINER_ENV, CONTAINER_SAS)
    found = load_azure_settings()
    assert found.output_container == CONTAINER_SAS
    assert found.configured is False  # still no [azure] table


def test_a_bad_environment_value_names_the_variable_and_hides_the_sas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTPUT_CONTAINER_ENV, f"{ACCOUNT}/output?sv=1&sp=rl&sig={SIG}")
    with pytest.raises(SettingsError) as caught:
        load_azure_settings(write(tmp_path, "[azure]\n"))
    message = str(caught.value)
    assert message.startswith(f"azure.output_container (from {OUTPUT_CONTAINER_ENV}): ")
    assert "racwl" in message
    assert SIG not in message


# ----------------------------------------------------------------------------- documentation


ALL_KEYS = (settings_module.KEYS + settings_module.API_VERSION_KEYS
            + settings_module.THROTTLE_KEYS + settings_module.BUCKET_KEYS)


def test_the_example_file_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    text = resources.files("core.azure").joinpath("config.example.toml").read_text("utf-8")
    assert load_azure_settings(write(tmp_path, text)) == AzureSettings(configured=True)


def test_every_key_is_documented_in_the_example_and_the_module_docstring() -> None:
    example = resources.files("core.azure").joinpath("config.example.toml").read_text("utf-8")
    docstring = settings_module.__doc__ or ""
    for key in ALL_KEYS:
        set_here = rf"^#?\s*{key}\s*=|[{{,]\s*{key}\s*=|^\[azure\.{key}\]"
        assert re.search(set_here, example, re.MULTILINE), key
        assert re.search(rf"``(\[azure\.)?{key}\]?``", docstring), key


def test_output_mode_user_delegation_takes_a_plain_container_url() -> None:
    settings = load_azure_settings_from_table({
        "output_container": f"{ACCOUNT}/fleetrun-output", "output_mode": "user-delegation"})
    assert settings.delegates and settings.output_container == f"{ACCOUNT}/fleetrun-output"
    assert not load_azure_settings_from_table({}).delegates


def test_output_mode_user_delegation_refuses_a_sas_without_showing_it() -> None:
    with pytest.raises(SettingsError) as caught:
        load_azure_settings_from_table({"output_container": CONTAINER_SAS,
                                        "output_mode": "user-delegation"})
    assert "azure.output_container" in str(caught.value) and "user-delegation" in str(caught.value)
    assert SIG not in str(caught.value)


def test_an_unknown_output_mode_is_named_with_the_choices() -> None:
    with pytest.raises(SettingsError) as caught:
        load_azure_settings_from_table({"output_mode": "delegated"})
    message = str(caught.value)
    assert message.startswith("azure.output_mode: 'delegated' is not allowed")
    assert "container-sas" in message and "user-delegation" in message
    assert "setup-output" in message


def load_azure_settings_from_table(table: dict[str, object]) -> AzureSettings:
    from core.azure.settings import parse_azure_settings

    return parse_azure_settings(table, environ={})
