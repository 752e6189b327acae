"""A certificate authority and a TLS Mosquitto with logins and an ACL, for the tests.

The certificates are made with openssl (EC keys, quick), the password file with
mosquitto_passwd; Mosquitto then listens on 127.0.0.1 with TLS only.
"""

from __future__ import annotations

import getpass
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.mosquitto import Broker


@dataclass(frozen=True)
class Pki:
    """A certificate authority, the broker's certificate it signed, and a stranger CA."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_pki(directory: Path) -> Pki:
    """A CA, a certificate for 127.0.0.1 (and localhost) signed by it, and an unrelated CA."""
    d = directory
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for name, subject in (("ca", "qr_charging test CA"), ("other", "someone else's CA")):
        _openssl(
            "req", "-x509", *ec, "-keyout", d / f"{name}.key", "-out", d / f"{name}.crt",
            "-days", "2", "-subj", f"/CN={subject}",
        )  # fmt: skip
    _openssl(
        "req", *ec, "-keyout", d / "broker.key", "-out", d / "broker.csr",
        "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "x509", "-req", "-in", d / "broker.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
        "-CAcreateserial", "-out", d / "broker.crt", "-days", "2", "-extfile", d / "san.cnf",
    )  # fmt: skip
    return Pki(d / "ca.crt", d / "broker.crt", d / "broker.key", d / "other.crt")


def tls_broker(workdir: Path, pki: Pki, logins: dict[str, str], acl: str) -> Broker:
    """A Mosquitto (not started) with TLS only, these logins, this ACL, no anonymous clients."""
    server = Broker(workdir)
    passwords = workdir / "passwords"
    passwords.write_text("")
    for user, password in logins.items():
        subprocess.run(["mosquitto_passwd", "-b", passwords, user, password], check=True)
    acl_file = workdir / "accesscontrollist"
    acl_file.write_text(acl)
    server.conf.write_text(
        f"listener {server.port} 127.0.0.1\n"
        f"cafile {pki.ca}\ncertfile {pki.cert}\nkeyfile {pki.key}\ntls_version tlsv1.2\n"
        f"allow_anonymous false\npersistence false\n"
        f"password_file {passwords}\nacl_file {acl_file}\n"
        # Started as root, Mosquitto would read these files as user "mosquitto": stay us.
        f"user {getpass.getuser()}\n"
    )
    return server
