"""mosquitto's password-file hash, written by hand in ``security.py``: it equals what
``mosquitto_passwd`` writes for the same salt, a file made by ``mosquitto_passwd`` and one made by
mlthon hold interchangeable lines, and a real mosquitto accepts the password it hashes (and
refuses a wrong one). Any change of the format (iterations, salt size, digest, encoding) fails
here."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest

from mlthon.infra.broker import MosquittoBroker
from mlthon.infra.bus.mqtt import MqttBus
from mlthon.infra.security import ADMIN_USER, mosquitto_password_hash, password_file_text

pytestmark = pytest.mark.integration

PASSWORDS = {"alice": "pw-alice-31x", "strat-s1": "sécret with spaces & ünïcode"}


def _mosquitto_passwd(tmp_path, user: str, password: str) -> str:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail("mosquitto_passwd is not installed: apt-get install -y mosquitto")
    path = tmp_path / "passwd"
    path.write_text("")
    subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)
    line = path.read_text().strip()
    assert line.startswith(f"{user}:")
    return line.split(":", 1)[1]


@pytest.mark.parametrize(("user", "password"), sorted(PASSWORDS.items()))
def test_password_hash_equals_mosquitto_passwd_for_the_same_salt(tmp_path, user, password):
    theirs = _mosquitto_passwd(tmp_path, user, password)
    salt = base64.b64decode(theirs.split("$")[3])
    iterations = int(theirs.split("$")[2])
    assert mosquitto_password_hash(password, salt=salt, iterations=iterations) == theirs
    # and mlthon's own choices are mosquitto_passwd's: iterations and salt length
    ours = mosquitto_password_hash(password).split("$")
    assert ours[1:3] == theirs.split("$")[1:3]
    assert len(base64.b64decode(ours[3])) == len(salt)


async def test_real_mosquitto_accepts_the_hashed_password_and_refuses_a_wrong_one(tmp_path):
    with MosquittoBroker(workdir=tmp_path, secure=True, users=PASSWORDS) as broker:
        assert "alice:$7$101$" in (tmp_path / "passwd").read_text()
        for user, password in (*PASSWORDS.items(), (ADMIN_USER, broker.admin_password)):
            async with MqttBus(broker.host, broker.port, username=user, password=password) as bus:
                await bus.wait_connected(10)
        async with MqttBus(broker.host, broker.port, username="alice", password="wrong") as bus:
            with pytest.raises(TimeoutError):
                await bus.wait_connected(1.0)


def test_password_file_lines_are_interchangeable_with_mosquitto_passwd(tmp_path):
    text = password_file_text(PASSWORDS)
    for line in text.splitlines():
        user, digest = line.split(":", 1)
        assert user in PASSWORDS and digest.count("$") == 4
    theirs = _mosquitto_passwd(tmp_path, "alice", PASSWORDS["alice"])
    assert len(theirs) == len(text.splitlines()[0].split(":", 1)[1])
