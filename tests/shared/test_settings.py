"""Typed settings: parsing, defaults, and start-up failures that name the variable."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tryon.shared.settings import (
    ServerSettings,
    SettingsError,
    kafka_bootstrap_from_env,
    load_settings,
    settings_or_exit,
)


@dataclass(frozen=True)
class CatalogueSettings(ServerSettings):
    """A service's settings as services declare them: a required path plus optional extras."""

    data_dir: Path
    topics: tuple[str, ...] = ("tryon.garments.v1",)
    consume_events: bool = True
    cache_size: int | None = None
    temperature: float = 1.0


def test_defaults_apply_when_only_required_values_are_set():
    settings = load_settings(CatalogueSettings, "TRYON_CAT_", {"TRYON_CAT_DATA_DIR": "/srv/catalogue"})

    assert settings == CatalogueSettings(data_dir=Path("/srv/catalogue"))
    assert (settings.host, settings.port, settings.metrics_port, settings.auth_token) == ("127.0.0.1", 0, None, None)
    assert (settings.grace_seconds, settings.max_workers, settings.log_level) == (10.0, 16, "INFO")


def test_every_supported_type_is_parsed_from_text():
    environ = {
        "TRYON_CAT_DATA_DIR": " ~/catalogue ",
        "TRYON_CAT_HOST": "0.0.0.0",
        "TRYON_CAT_PORT": "50051",
        "TRYON_CAT_METRICS_PORT": "9100",
        "TRYON_CAT_AUTH_TOKEN": "s3cret",
        "TRYON_CAT_GRACE_SECONDS": "2.5",
        "TRYON_CAT_LOG_LEVEL": "debug",
        "TRYON_CAT_TOPICS": "a.v1, b.v1,,",
        "TRYON_CAT_CONSUME_EVENTS": "off",
        "TRYON_CAT_CACHE_SIZE": "128",
        "TRYON_CAT_TEMPERATURE": "0.7",
    }

    settings = load_settings(CatalogueSettings, "TRYON_CAT_", environ)

    assert settings.data_dir == Path("~/catalogue").expanduser()
    assert (settings.host, settings.port, settings.metrics_port) == ("0.0.0.0", 50051, 9100)
    assert settings.auth_token == "s3cret"
    assert settings.grace_seconds == 2.5
    assert settings.log_level == "DEBUG"
    assert settings.topics == ("a.v1", "b.v1")
    assert settings.consume_events is False
    assert settings.cache_size == 128
    assert settings.temperature == 0.7


def test_an_empty_optional_value_means_none():
    settings = load_settings(
        CatalogueSettings,
        "TRYON_CAT_",
        {"TRYON_CAT_DATA_DIR": "/d", "TRYON_CAT_METRICS_PORT": "", "TRYON_CAT_CACHE_SIZE": " "},
    )

    assert settings.metrics_port is None
    assert settings.cache_size is None


@pytest.mark.parametrize(
    ("variable", "value", "sentence"),
    [
        ("TRYON_CAT_PORT", "abc", "TRYON_CAT_PORT must be an integer between 0 and 65535, got 'abc'"),
        ("TRYON_CAT_PORT", "70000", "TRYON_CAT_PORT must be an integer between 0 and 65535, got '70000'"),
        ("TRYON_CAT_METRICS_PORT", "-1", "TRYON_CAT_METRICS_PORT must be an integer between 0 and 65535, got '-1'"),
        ("TRYON_CAT_MAX_WORKERS", "0", "TRYON_CAT_MAX_WORKERS must be an integer between 1 and 1024, got '0'"),
        ("TRYON_CAT_GRACE_SECONDS", "soon", "TRYON_CAT_GRACE_SECONDS must be a number between 0.0 and 3600.0"),
        ("TRYON_CAT_GRACE_SECONDS", "inf", "TRYON_CAT_GRACE_SECONDS must be a finite number"),
        ("TRYON_CAT_TEMPERATURE", "nan", "TRYON_CAT_TEMPERATURE must be a finite number, got 'nan'"),
        ("TRYON_CAT_CONSUME_EVENTS", "maybe", "TRYON_CAT_CONSUME_EVENTS must be true or false"),
        ("TRYON_CAT_LOG_LEVEL", "loud", "TRYON_CAT_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("TRYON_CAT_DATA_DIR", "  ", "TRYON_CAT_DATA_DIR must be a path, got an empty value"),
    ],
)
def test_a_malformed_value_is_refused_with_a_sentence_naming_the_variable(variable, value, sentence):
    environ = {"TRYON_CAT_DATA_DIR": "/d", variable: value}

    with pytest.raises(SettingsError) as raised:
        load_settings(CatalogueSettings, "TRYON_CAT_", environ)

    assert str(raised.value).startswith(sentence)


def test_a_missing_required_value_names_the_variable():
    with pytest.raises(SettingsError, match=r"^TRYON_CAT_DATA_DIR is required but not set$"):
        load_settings(CatalogueSettings, "TRYON_CAT_", {"TRYON_CAT_PORT": "1"})


def test_variables_of_other_prefixes_are_ignored():
    settings = load_settings(
        CatalogueSettings, "TRYON_CAT_", {"TRYON_CAT_DATA_DIR": "/d", "TRYON_BODY_PORT": "abc", "PORT": "x"}
    )

    assert settings.port == 0


def test_settings_are_frozen():
    settings = load_settings(ServerSettings, "TRYON_X_", {})

    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_an_unsupported_field_type_is_a_programming_error():
    @dataclass(frozen=True)
    class Odd(ServerSettings):
        weights: list[float] | None = None

    with pytest.raises(TypeError, match="TRYON_ODD_WEIGHTS"):
        load_settings(Odd, "TRYON_ODD_", {"TRYON_ODD_WEIGHTS": "1,2"})


def test_settings_or_exit_prints_the_sentence_and_exits_with_status_2(capsys):
    with pytest.raises(SystemExit) as exited:
        settings_or_exit(ServerSettings, "TRYON_BODY_", {"TRYON_BODY_PORT": "abc"})

    assert exited.value.code == 2
    assert capsys.readouterr().err == "TRYON_BODY_PORT must be an integer between 0 and 65535, got 'abc'\n"


def test_settings_or_exit_returns_good_settings():
    assert settings_or_exit(ServerSettings, "TRYON_BODY_", {"TRYON_BODY_PORT": "7"}).port == 7


@pytest.mark.parametrize("environ", [{}, {"KAFKA_BOOTSTRAP_SERVERS": ""}, {"KAFKA_BOOTSTRAP_SERVERS": "  "}])
def test_kafka_bootstrap_is_none_when_unset_or_empty(environ):
    assert kafka_bootstrap_from_env(environ) is None


def test_kafka_bootstrap_is_read_without_prefix():
    environ = {"KAFKA_BOOTSTRAP_SERVERS": " kafka-0:9092,kafka-1:9092 "}

    assert kafka_bootstrap_from_env(environ) == "kafka-0:9092,kafka-1:9092"


def test_a_malformed_kafka_bootstrap_names_the_variable():
    with pytest.raises(SettingsError, match="^KAFKA_BOOTSTRAP_SERVERS must be a comma-separated list of host:port"):
        kafka_bootstrap_from_env({"KAFKA_BOOTSTRAP_SERVERS": "kafka-0"})


@dataclass(frozen=True, kw_only=True)
class _RenamedSettings(ServerSettings):
    train_epochs: int = field(default=3, metadata={"minimum": 1, "formerly": "TRAINING_EPOCHS"})


def test_a_renamed_setting_is_still_read_under_its_former_name_with_a_warning():
    with pytest.warns(DeprecationWarning, match="TRYON_X_TRAINING_EPOCHS is deprecated; set TRYON_X_TRAIN_EPOCHS"):
        former = load_settings(_RenamedSettings, "TRYON_X_", {"TRYON_X_TRAINING_EPOCHS": "7"})
    current = load_settings(_RenamedSettings, "TRYON_X_", {"TRYON_X_TRAIN_EPOCHS": "9", "TRYON_X_TRAINING_EPOCHS": "7"})

    assert (former.train_epochs, current.train_epochs) == (7, 9)
    with pytest.raises(SettingsError, match="TRYON_X_TRAINING_EPOCHS must be an integer of at least 1, got '0'"):
        load_settings(_RenamedSettings, "TRYON_X_", {"TRYON_X_TRAINING_EPOCHS": "0"})
