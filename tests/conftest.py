"""Shared fixtures: fresh telemetry per test, free ports, real binaries."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tradetel
from tradetel.testing import Capture, capture


@pytest.fixture(autouse=True)
def _no_default_telemetry() -> Iterator[None]:
    """Every test starts without a process-wide default and leaves none behind."""
    tradetel.set_default(None)
    yield
    tradetel.set_default(None)


PUBLIC_PATH_ONLY = os.environ.get("TRADETEL_FAST_PATH", "").strip().lower() in ("0", "false")
"""``TRADETEL_FAST_PATH=false pytest``: the whole suite on the public path, as on an SDK that breaks the contract."""


@pytest.fixture(autouse=True)
def _public_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """With TRADETEL_FAST_PATH=false, every configure() finds the fast path's contract broken.

    Subprocesses and configure() calls reading ``os.environ`` see the variable itself; calls given
    ``env={}`` see the contract check fail, as it would on an SDK that renamed a private name.
    """
    if PUBLIC_PATH_ONLY:
        from tradetel import _sdk

        monkeypatch.setattr(_sdk, "_CHECKED", [("TRADETEL_FAST_PATH=false in the test environment",)])


@pytest.fixture(autouse=True)
def _fresh_otel_global() -> Iterator[None]:
    """Every test leaves the global OpenTelemetry MeterProvider unset, as a new process has it.

    OpenTelemetry sets it once per process; tests that install one (tradetel.otel_global) must
    not decide what the next test sees. The reset touches OpenTelemetry internals, so it lives here.
    """
    yield
    from opentelemetry.metrics import _internal as otel_metrics

    import tradetel.otel_global

    if otel_metrics._METER_PROVIDER is not None or tradetel.otel_global._SWITCH is not None:
        otel_metrics._METER_PROVIDER_SET_ONCE = type(otel_metrics._METER_PROVIDER_SET_ONCE)()
        otel_metrics._METER_PROVIDER = None
        otel_metrics._PROXY_METER_PROVIDER = otel_metrics._ProxyMeterProvider()
        tradetel.otel_global._SWITCH = None


@pytest.fixture
def cap() -> Iterator[Capture]:
    """A fresh Telemetry with no backends, read through tradetel.testing."""
    with capture() as captured:
        yield captured


@pytest.fixture
def strict_cap() -> Iterator[Capture]:
    with capture(strict=True) as captured:
        yield captured


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: scripts/test installs the Debian prometheus package")
    return path


@pytest.fixture
def quiet_tradetel_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="tradetel")
    return caplog


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost, its key, and the same key encrypted."""

    cert: Path
    key: Path
    encrypted_key: Path

    def prometheus_env(self, username: str, password: str) -> dict[str, str]:
        """Settings for a /metrics endpoint with this certificate and basic auth."""
        return {
            "TRADETEL_PROMETHEUS_TLS_CERT": str(self.cert),
            "TRADETEL_PROMETHEUS_TLS_KEY": str(self.key),
            "TRADETEL_PROMETHEUS_BASIC_AUTH_USERNAME": username,
            "TRADETEL_PROMETHEUS_BASIC_AUTH_PASSWORD": password,
        }


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A fresh self-signed certificate (it is its own CA), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tradetel test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # What strict X.509 verification (urllib3 2, OpenSSL's X509_STRICT) wants of a self-signed CA.
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem", folder / "encrypted-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    encryption = serialization.BestAvailableEncryption(b"key password")
    files.encrypted_key.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, encryption))
    return files
