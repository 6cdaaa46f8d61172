"""Typed settings read once from environment variables.

A service describes its configuration as a frozen dataclass that subclasses
`ServerSettings`; `load_settings` fills it from variables named
``<PREFIX><FIELD_NAME_UPPER>`` (for example ``TRYON_BODY_PORT``). A missing or malformed
value raises `SettingsError` with one sentence that names the variable, so start-up
stops before anything is bound or loaded. A field's ``metadata`` may carry
``minimum``, ``maximum`` and ``choices`` to narrow what is accepted, and ``formerly``: the
field's earlier variable suffix, still read (with a DeprecationWarning) when the current
variable is unset, so a renamed setting keeps working in existing deployments.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

SettingsT = TypeVar("SettingsT")

KAFKA_BOOTSTRAP_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_PORT_RANGE = {"minimum": 0, "maximum": 65535}


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """Certificate paths of a server that may serve TLS and of its own clients (PEM files).

    Unset, everything is plaintext: the default on loopback, and inside a pod whose mesh sidecar
    terminates TLS. A file that cannot be read, or holds no PEM block, is a SettingsError at start.
    `tryon.shared.tls` turns these paths into server and channel credentials.
    """

    tls_cert_file: Path | None = None
    """Certificate chain this server presents; with tls_key_file it serves TLS only. The service's
    own calls to other services present it as their client certificate when those require one."""
    tls_key_file: Path | None = None
    """Private key of tls_cert_file; set both or neither."""
    tls_client_ca_file: Path | None = None
    """CA bundle that must have signed every client's certificate (mTLS); needs tls_cert_file."""
    tls_ca_file: Path | None = None
    """CA bundle that verifies the servers this one calls; when set, those calls use TLS."""

    def __post_init__(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise SettingsError("TLS_CERT_FILE and TLS_KEY_FILE must be set together: a certificate needs its key")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise SettingsError(
                "TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE: client certificates are checked only over TLS"
            )
        # Imported here: tryon.shared.tls builds on these settings.
        from tryon.shared.tls import read_pem

        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file", "tls_ca_file"):
            path = getattr(self, name)
            if path is not None:
                read_pem(path, name.upper())


@dataclass(frozen=True, kw_only=True)
class ServerSettings(TlsSettings):
    """What every gRPC service needs to start; services subclass it and add their own fields.

    The fields are keyword-only so that a subclass may add required fields (without a
    default) under a plain ``@dataclass(frozen=True)``.
    """

    host: str = "127.0.0.1"
    """Interface to bind; 0.0.0.0 to accept connections from other machines."""
    port: int = field(default=0, metadata=_PORT_RANGE)
    """gRPC port; 0 picks a free port (read it back from the running server)."""
    metrics_port: int | None = field(default=None, metadata=_PORT_RANGE)
    """Prometheus HTTP port; unset serves no metrics, 0 picks a free port."""
    auth_token: str | None = None
    """When set, every call except health and reflection needs `authorization: Bearer <token>`."""
    grace_seconds: float = field(default=10.0, metadata={"minimum": 0.0, "maximum": 3600.0})
    """How long in-flight calls may run on after shutdown starts."""
    max_workers: int = field(default=16, metadata={"minimum": 1, "maximum": 1024})
    """Threads that run handlers, hence the number of calls served at once."""
    log_level: str = field(default="INFO", metadata={"choices": _LOG_LEVELS})
    """Lowest severity written to the log."""
    log_flush_seconds: float = field(default=0.2, metadata={"minimum": 0.0, "maximum": 60.0})
    """Lines below WARNING are written in batches at least this often; 0 writes each line at once.
    On two loaded cores, one write per call's log line cost a cheap call a third of its throughput."""
    max_message_bytes: int = field(default=9 * 1024 * 1024, metadata={"minimum": 1024, "maximum": 1 << 30})
    """Largest message received or sent; the default leaves room for an 8 MiB garment picture."""
    health_port: int | None = field(default=None, metadata=_PORT_RANGE)
    """A second, plaintext port that serves only grpc.health.v1, for probes that speak no TLS
    (Kubernetes' grpc probe); unset serves none, 0 picks a free port."""
    torch_threads: int = field(default=1, metadata={"minimum": 1, "maximum": 256})
    """Threads torch uses inside one operation. The models are small: on two cores one thread trained
    the body model 7x faster than two while the other core was busy, and calls run in parallel anyway."""


def load_settings(
    cls: type[SettingsT], prefix: str, environ: Mapping[str, str] | None = None
) -> SettingsT:
    """Build the frozen dataclass `cls` from ``prefix + FIELD_NAME.upper()`` variables.

    Supported field types: str, int, float, bool, pathlib.Path, ``X | None`` of those
    (an empty value means None) and ``tuple[str, ...]`` (comma-separated). A field
    without a default is required. Raises SettingsError naming the variable at fault.
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"{cls!r} is not a dataclass type")
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for settings_field in dataclasses.fields(cls):
        if not settings_field.init:
            continue
        variable = prefix + settings_field.name.upper()
        raw = environ.get(variable)
        former = settings_field.metadata.get("formerly")
        if raw is None and former is not None and prefix + former in environ:
            warnings.warn(f"{prefix + former} is deprecated; set {variable} instead", DeprecationWarning, stacklevel=2)
            variable = prefix + former
            raw = environ[variable]
        has_default = (
            settings_field.default is not dataclasses.MISSING
            or settings_field.default_factory is not dataclasses.MISSING
        )
        if raw is None:
            if not has_default:
                raise SettingsError(f"{variable} is required but not set")
            continue
        value = _parse(variable, raw, hints[settings_field.name], settings_field.metadata)
        _check_bounds(variable, raw, value, settings_field.metadata)
        values[settings_field.name] = value
    try:
        return cls(**values)
    except SettingsError as error:
        # A check across fields names variables by suffix; say which prefix they carry here.
        raise SettingsError(f"{error} (each variable named with the prefix {prefix})") from None


def settings_or_exit(
    cls: type[SettingsT], prefix: str, environ: Mapping[str, str] | None = None
) -> SettingsT:
    """Load settings for a `__main__` module, or print the reason to stderr and exit with status 2."""
    try:
        return load_settings(cls, prefix, environ)
    except SettingsError as error:
        _exit_with(str(error))


def kafka_bootstrap_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The Kafka bootstrap servers from KAFKA_BOOTSTRAP_SERVERS, or None when unset or empty."""
    environ = os.environ if environ is None else environ
    servers = environ.get(KAFKA_BOOTSTRAP_VARIABLE, "").strip()
    if not servers:
        return None
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise SettingsError(
                f"{KAFKA_BOOTSTRAP_VARIABLE} must be a comma-separated list of host:port, got {servers!r}"
            )
    return servers


def _exit_with(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(2)


def _parse(variable: str, raw: str, annotation: Any, metadata: Mapping[str, Any]) -> Any:
    optional_of = _optional_inner(annotation)
    if optional_of is not None:
        if raw.strip() == "":
            return None
        return _parse(variable, raw, optional_of, metadata)
    if annotation is str:
        return _match_choice(variable, raw, metadata)
    if annotation is bool:
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise SettingsError(f"{variable} must be true or false (or 1/0, yes/no, on/off), got {raw!r}")
    if annotation is int:
        try:
            return int(raw.strip())
        except ValueError:
            raise SettingsError(f"{variable} must be {_accepted('an integer', metadata)}, got {raw!r}") from None
    if annotation is float:
        try:
            number = float(raw.strip())
        except ValueError:
            raise SettingsError(f"{variable} must be {_accepted('a number', metadata)}, got {raw!r}") from None
        if not math.isfinite(number):
            raise SettingsError(f"{variable} must be {_accepted('a finite number', metadata)}, got {raw!r}")
        return number
    if annotation is Path:
        if raw.strip() == "":
            raise SettingsError(f"{variable} must be a path, got an empty value")
        return Path(raw.strip()).expanduser()
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (str, Ellipsis):
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    raise TypeError(f"settings field for {variable} has an unsupported type {annotation!r}")


def _optional_inner(annotation: Any) -> Any | None:
    """The X of ``X | None``, or None when the annotation is not optional."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    members = [member for member in typing.get_args(annotation) if member is not type(None)]
    if len(members) != 1 or len(typing.get_args(annotation)) != 2:
        return None
    return members[0]


def _match_choice(variable: str, raw: str, metadata: Mapping[str, Any]) -> str:
    """The value itself, or the canonical spelling of the choice it names (case-insensitive)."""
    choices = metadata.get("choices")
    if choices is None:
        return raw
    for choice in choices:
        if raw.strip().lower() == str(choice).lower():
            return choice
    raise SettingsError(f"{variable} must be one of {', '.join(map(str, choices))}, got {raw!r}")


def _accepted(kind: str, metadata: Mapping[str, Any]) -> str:
    """Describe the accepted values, e.g. 'an integer between 0 and 65535'."""
    minimum = metadata.get("minimum")
    maximum = metadata.get("maximum")
    if minimum is not None and maximum is not None:
        return f"{kind} between {minimum} and {maximum}"
    if minimum is not None:
        return f"{kind} of at least {minimum}"
    if maximum is not None:
        return f"{kind} of at most {maximum}"
    return kind


def _check_bounds(variable: str, raw: str, value: Any, metadata: Mapping[str, Any]) -> None:
    if value is None or isinstance(value, (str, bool)):
        return
    minimum = metadata.get("minimum")
    maximum = metadata.get("maximum")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        kind = "an integer" if isinstance(value, int) else "a number"
        raise SettingsError(f"{variable} must be {_accepted(kind, metadata)}, got {raw!r}")
