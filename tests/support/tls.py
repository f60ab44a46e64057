"""A self-signed certificate for 127.0.0.1, made with the ``openssl`` command, for TLS tests."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SelfSigned:
    """The certificate (also the CA a client trusts) and its key, as files."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """What a local TLS server serves with."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(directory: Path) -> SelfSigned:
    """A fresh key and certificate for IP 127.0.0.1 in ``directory``, valid for a day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the TLS tests need the openssl command")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return SelfSigned(cert=cert, key=key)
