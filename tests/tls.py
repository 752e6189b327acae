"""A Mosquitto with logins and an ACL (over TLS, with a certificate authority), for the tests.

The certificates are made with openssl (EC keys, quick), the password file with
mosquitto_passwd; Mosquitto then listens on 127.0.0.1, with TLS only when given the PKI.
``Login`` is a client of such a broker that records what it receives.
"""

from __future__ import annotations

import getpass
import re
import subprocess
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.mosquitto import Broker

DOC = Path(__file__).parents[1] / "docs" / "security.md"
# The password of every login the tests give such a broker.
PASSWORD = "a-long-random-password"


def documented_acl() -> str:
    """The access control list as docs/security.md gives it."""
    found = re.search(r"and `accesscontrollist`:\s*```text\n(.*?)```", DOC.read_text(), re.S)
    assert found is not None, "docs/security.md has no accesscontrollist block"
    return textwrap.dedent(found.group(1))


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


def acl_broker(
    workdir: Path, logins: dict[str, str], acl: str | None = None, pki: Pki | None = None
) -> Broker:
    """A Mosquitto (not started) with these logins, this ACL (if any), no anonymous clients.

    With ``pki`` it listens with TLS only, with its certificate.
    """
    server = Broker(workdir)
    passwords = workdir / "passwords"
    passwords.write_text("")
    for user, password in logins.items():
        subprocess.run(["mosquitto_passwd", "-b", passwords, user, password], check=True)
    lines = [f"listener {server.port} 127.0.0.1"]
    if pki is not None:
        lines += [f"cafile {pki.ca}", f"certfile {pki.cert}", f"keyfile {pki.key}"]
        lines += ["tls_version tlsv1.2"]
    lines += ["allow_anonymous false", "persistence false", f"password_file {passwords}"]
    if acl is not None:
        acl_file = workdir / "accesscontrollist"
        acl_file.write_text(acl)
        lines += [f"acl_file {acl_file}"]
    # Started as root, Mosquitto would read these files as user "mosquitto": stay us.
    lines += [f"user {getpass.getuser()}"]
    server.conf.write_text("".join(f"{line}\n" for line in lines))
    return server


class Login:
    """An MQTT client logged in as ``user`` (none: anonymous), recording what it receives on ``#``.

    Over TLS when given the CA to trust. ``subscribed`` is set once the broker took the
    subscription; ``refused`` is the broker's answer when it refused the connection.
    """

    def __init__(
        self, port: int, user: str | None, password: str = PASSWORD, ca: Path | None = None
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.refused: Any = None
        self._cond = threading.Condition()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}")
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, code: Any, props: Any) -> None:
        if code.is_failure:
            self.refused = code
            return
        client.subscribe("#", qos=1)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def topics(self) -> list[str]:
        with self._cond:
            return [topic for topic, _ in self.messages]

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def wait_for(self, topic: str, contains: bytes = b"", timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(t == topic and contains in p for t, p in self.messages):
                left = deadline - time.monotonic()
                assert left > 0, f"nothing on {topic} with {contains!r}; saw {self.messages}"
                self._cond.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
