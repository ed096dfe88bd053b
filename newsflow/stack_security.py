"""Credentials for the local stack's secured Kafka listener: a private CA, a certificate, a user.

Tests and developers need a real SASL_SSL endpoint to prove that newsflow's clients verify
certificates and authenticate; a self-signed CA made per state directory gives one without
shipping keys in the repository. Everything is generated once, with openssl, and kept private
to the user (0700 directory, 0600 files).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from newsflow.errors import NewsflowError

#: The local broker's only SASL user.
DEV_USERNAME = "newsflow"
#: Names the broker certificate is valid for: the stack binds and advertises loopback only.
SERVER_NAMES = "subjectAltName=DNS:localhost,IP:127.0.0.1"
_CERT_DAYS = "825"


class StackSecurityError(NewsflowError):
    """openssl is missing or failed; the message says what to install or where to look."""


@dataclass(frozen=True)
class StackSecurity:
    """The files under ``<state_dir>/security`` and what they are for."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        """Trust this (NEWSFLOW_KAFKA__SSL_CAFILE) to talk to the SASL_SSL listener."""
        return self.directory / "ca.pem"

    @property
    def cert_file(self) -> Path:
        """Certificate for localhost and 127.0.0.1, signed by the CA."""
        return self.directory / "server.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "server.key"

    @property
    def keystore_file(self) -> Path:
        """Key and certificate in one PEM file, the form Kafka's PEM keystore reads."""
        return self.directory / "server-keystore.pem"

    @property
    def credentials_file(self) -> Path:
        return self.directory / "kafka-user.json"

    def credentials(self) -> tuple[str, str]:
        """The local broker's SASL user and password."""
        stored = json.loads(self.credentials_file.read_text())
        return stored["username"], stored["password"]

    def ensure(self) -> None:
        """Generate whatever is missing; existing files are kept, so clients stay valid."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.credentials_file.exists():
            _write_private(
                self.credentials_file,
                json.dumps({"username": DEV_USERNAME, "password": secrets.token_urlsafe(24)}),
            )
        if not self.keystore_file.exists():
            self._make_certificates()

    def _make_certificates(self) -> None:
        ca_key = self.directory / "ca.key"
        request = self.directory / "server.csr"
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", _CERT_DAYS,
            "-subj", "/CN=newsflow local stack CA", "-keyout", ca_key, "-out", self.ca_file,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", self.key_file, "-out", request, "-addext", SERVER_NAMES,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", request, "-CA", self.ca_file, "-CAkey", ca_key,
            "-CAcreateserial", "-days", _CERT_DAYS, "-copy_extensions", "copy",
            "-out", self.cert_file,
        )  # fmt: skip
        request.unlink()
        for path in (ca_key, self.key_file):
            path.chmod(0o600)
        _write_private(self.keystore_file, self.key_file.read_text() + self.cert_file.read_text())


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def _openssl(*args: str | Path) -> None:
    openssl = shutil.which("openssl")
    if not openssl:
        raise StackSecurityError(
            "openssl not found; it makes the local stack's TLS certificates. Install it "
            "(Debian: `apt-get install openssl`)"
        )
    result = subprocess.run([openssl, *map(str, args)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackSecurityError(f"openssl {args[0]} failed:\n{result.stderr[-2000:]}")
