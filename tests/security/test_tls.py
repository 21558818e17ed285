"""`s2cvpn serve --certfile --keyfile` terminates TLS: a self-signed certificate made here,
the server started with it, and the API reached over HTTPS (and not over plain HTTP)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.servers import PREFIX, free_port


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return certfile, keyfile


def test_serve_with_tls(tmp_path: Path) -> None:
    certfile, keyfile = self_signed(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    env = {**os.environ, "S2CVPN_DATABASE_URL": f"sqlite:///{tmp_path / 'tls.db'}", "S2CVPN_PUBLIC_URL": url}
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "s2cvpn", "serve", "--port", str(port), "--log-level", "warning",
             "--certfile", str(certfile), "--keyfile", str(keyfile)],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        trust = ssl.create_default_context(cafile=str(certfile))
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"{url}/health/ready", verify=trust, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert ready is not None and ready.status_code == 200, (tmp_path / "server.log").read_text()[-2000:]
        answer = httpx.get(f"{url}{PREFIX}/sessions", verify=trust, headers={"x-correlator": "tls-1"})
        assert answer.status_code == 401 and answer.json()["code"] == "UNAUTHENTICATED"
        assert answer.headers["x-correlator"] == "tls-1"
        assert answer.http_version == "HTTP/1.1"
        spec = httpx.get(f"{url}/openapi.json", verify=trust).json()
        assert spec["components"]["securitySchemes"]["openId"]["openIdConnectUrl"].startswith("https://127.0.0.1")
        try:  # the certificate is not trusted by default, and plain HTTP is not served
            httpx.get(f"{url}/health/live", timeout=5)
            raise AssertionError("an untrusted certificate was accepted")
        except httpx.ConnectError:
            pass
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
            assert plain.status_code == 400  # uvicorn answers a plain request on a TLS port with an error
        except httpx.HTTPError:
            pass
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
