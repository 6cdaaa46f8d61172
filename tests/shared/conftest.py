"""Certificates made at test time: a CA, a server certificate for 127.0.0.1 and localhost, client certificates."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    """PEM files of one test CA and what it signed, plus a second CA that signed nothing here."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path
    other_ca: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool, usages=(), sans=()) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _ca(directory: Path, stem: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(_name(f"tryon test {stem}"), _name(f"tryon test {stem}"), key.public_key(), key, ca=True)
    return _write_cert(directory / f"{stem}.pem", cert), cert, key


def _leaf(directory: Path, stem: str, ca_cert, ca_key, usages, sans=()) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(_name(stem), ca_cert.subject, key.public_key(), ca_key, ca=False, usages=usages, sans=sans)
    return _write_cert(directory / f"{stem}.pem", cert), _write_key(directory / f"{stem}-key.pem", key)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One CA with a server certificate (server and client auth, for 127.0.0.1 and localhost) and a
    client certificate; a stranger's client certificate signed by another CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca, ca_cert, ca_key = _ca(directory, "ca")
    other_ca, other_cert, other_key = _ca(directory, "other-ca")
    both = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    sans = (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    server_cert, server_key = _leaf(directory, "server", ca_cert, ca_key, both, sans)
    client_cert, client_key = _leaf(directory, "client", ca_cert, ca_key, (ExtendedKeyUsageOID.CLIENT_AUTH,))
    stranger_cert, stranger_key = _leaf(directory, "stranger", other_cert, other_key, (ExtendedKeyUsageOID.CLIENT_AUTH,))
    return Pki(ca, server_cert, server_key, client_cert, client_key, stranger_cert, stranger_key, other_ca)
