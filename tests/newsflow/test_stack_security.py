"""The local stack's CA, certificate and SASL user: private files, and a certificate that works."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

from newsflow.stack_security import DEV_USERNAME, StackSecurity


def handshake(security: StackSecurity, hostname: str) -> None:
    """A real TLS handshake: the server presents the certificate, the client trusts the CA."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(security.cert_file, security.key_file)
    client_context = ssl.create_default_context(cafile=str(security.ca_file))
    server_side, client_side = socket.socketpair()

    def serve() -> None:
        with contextlib.suppress(ssl.SSLError):  # the client's refusal, asserted on its side
            server_context.wrap_socket(server_side, server_side=True).close()

    with server_side, client_side:
        server = threading.Thread(target=serve, daemon=True)
        server.start()
        client_context.wrap_socket(client_side, server_hostname=hostname).close()
        server.join(5)


def test_ensure_makes_private_files_and_keeps_them(tmp_path: Path) -> None:
    security = StackSecurity(tmp_path / "security")
    security.ensure()
    username, password = security.credentials()
    assert username == DEV_USERNAME and len(password) >= 24
    assert security.directory.stat().st_mode & 0o777 == 0o700
    for secret in (security.credentials_file, security.key_file, security.keystore_file):
        assert secret.stat().st_mode & 0o777 == 0o600, secret
    certificate = security.cert_file.read_text()
    security.ensure()  # a second `stack up` must not invalidate what clients hold
    assert security.credentials() == (username, password)
    assert security.cert_file.read_text() == certificate


def test_the_certificate_is_valid_for_localhost_under_the_ca(tmp_path: Path) -> None:
    security = StackSecurity(tmp_path / "security")
    security.ensure()
    handshake(security, "localhost")
    keystore = security.keystore_file.read_text()
    assert "PRIVATE KEY" in keystore and "CERTIFICATE" in keystore


def test_another_name_is_refused(tmp_path: Path) -> None:
    security = StackSecurity(tmp_path / "security")
    security.ensure()
    try:
        handshake(security, "broker.example.com")
    except ssl.SSLCertVerificationError as exc:
        assert "Hostname mismatch" in exc.verify_message
    else:
        raise AssertionError("a certificate for localhost was accepted for another host")
