"""Helpers of the deploy/ checks: where things are, the Debian-packaged tools, TLS material."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import importlib.util
import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = ROOT / ".tools" / "debian"


def debian_tool(name: str, package: str) -> str:
    """Path of ``name`` (e.g. promtool): on PATH, else unpacked from Debian's ``package``.

    Prometheus ships promtool and amtool on no Python registry; Debian's packages carry
    both. The package is downloaded and unpacked under .tools (``apt-get download`` +
    ``dpkg-deb -x``), never installed, so no daemon is started and nothing outside the
    work tree changes. The first run fetches it (about 30 MB); later runs reuse it.
    """
    found = shutil.which(name)
    if found:
        return found
    binary = TOOLS / "root" / "usr" / "bin" / name
    if binary.exists():
        return str(binary)
    debs = TOOLS / "debs"
    debs.mkdir(parents=True, exist_ok=True)

    def download() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["apt-get", "download", "-q", package], cwd=debs,
                              capture_output=True, text=True)

    try:
        got = download()
        if got.returncode != 0 and os.geteuid() == 0:  # a fresh machine: no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
            got = download()
    except FileNotFoundError as exc:
        raise RuntimeError(f"{name} is not on PATH and this machine has no apt-get to fetch "
                           f"Debian's {package!r}: install {name} or put it on PATH") from exc
    if got.returncode != 0:
        raise RuntimeError(f"apt-get download {package} failed: {got.stderr.strip()}")
    for deb in sorted(debs.glob(f"{package}_*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(TOOLS / "root")], check=True)
    if not binary.exists():
        raise RuntimeError(f"{package} did not contain usr/bin/{name}")
    return str(binary)


def cli_exists(module: str) -> bool:
    """Whether ``python -m <module>`` is a command yet (docs/ops-code-needs.md 1 and 4)."""
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.origin is not None and \
        "__main__" in Path(spec.origin).read_text()


def make_tls(folder: Path) -> Path:
    """A private CA and one certificate for every NATS node (as docs/runbooks.md makes
    them): names nats, nats-0.nats .. nats-2.nats, localhost and 127.0.0.1, for server and
    client (routes) use. Not ``*.nats``: OpenSSL, so Python's ssl, refuses a wildcard over a
    single label."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("microtask test CA"))
          .issuer_name(name("microtask test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("nats")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("nats"), *(x509.DNSName(f"nats-{i}.nats") for i in range(3)),
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "ca.crt").write_bytes(ca.public_bytes(pem))
    (folder / "tls.crt").write_bytes(cert.public_bytes(pem))
    (folder / "tls.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return folder


Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.load_all(path.read_text(), Loader=Loader) if d]


@functools.cache
def _k8s_objects(stamp: tuple[tuple[str, float], ...]) -> tuple[dict, ...]:
    out: list[dict] = []
    for name, _ in stamp:
        out += load_yaml_docs(DEPLOY / "k8s" / name)
    return tuple(out)


def k8s_objects() -> list[dict]:
    """Every object of the Kubernetes set (deploy/k8s/*.yaml), parsed once per content.
    Read-only: copy an object before changing it."""
    paths = sorted((DEPLOY / "k8s").glob("*.yaml"))
    return list(_k8s_objects(tuple((p.name, p.stat().st_mtime) for p in paths)))
