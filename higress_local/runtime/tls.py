"""The self-signed certificate of `gateway.tls: true`, written into the stack directory."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..system import ownfiles as safefs
from ..config.models import Project

CERT_FILE = "gateway.crt"
KEY_FILE = "gateway.key"
VALID_DAYS = 825  # what clients such as macOS still accept for a server certificate


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    names: tuple[str, ...]  # DNS names and IP addresses it covers


def certificate_names(project: Project) -> tuple[str, ...]:
    """localhost, 127.0.0.1, ::1 and every route domain a certificate can name ("*" cannot)."""
    names = ["localhost", "127.0.0.1", "::1"]
    for route in project.routes:
        for domain in route.domains:
            host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
            if host and host != "*" and host not in names:
                names.append(host)
    return tuple(names)


def _subject_alt_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def ensure_certificate(project: Project, directory: Path, *, now: datetime.datetime | None = None) -> Certificate:
    """Write a self-signed certificate covering `certificate_names(project)` into `directory`.

    An existing pair is reused while it covers the same names (clients that pinned it keep working
    across restarts); otherwise a new EC P-256 key and certificate replace it.
    """
    names = certificate_names(project)
    safefs.ensure_dir(directory)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if safefs.read_private(key_path) is not None and _covers(cert_path, names, now):
        return Certificate(cert_path, key_path, names)
    key = ec.generate_private_key(ec.SECP256R1())
    now = now or datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hlocal {project.name}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    # 0600 from the first byte, by rename, never through a link (safefs): the key is a secret.
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    safefs.write_private(key_path, key_pem)
    safefs.write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return Certificate(cert_path, key_path, names)


def mounted_certificate(project: Project, state_dir: Path, mount: str) -> tuple[Certificate, str, str]:
    """The certificate in `state_dir`/tls (as `ensure_certificate`) and its cert and key paths as a
    container sees them with `state_dir` mounted at `mount` (the docker runtime)."""
    cert = ensure_certificate(project, state_dir / "tls")
    inside = [f"{mount}/{path.relative_to(state_dir).as_posix()}" for path in (cert.cert, cert.key)]
    return cert, inside[0], inside[1]


def _covers(cert_path: Path, names: tuple[str, ...], now: datetime.datetime | None) -> bool:
    try:
        data = safefs.read_private(cert_path)
        if data is None:
            return False
        cert = x509.load_pem_x509_certificate(data)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound, OSError):
        return False
    have = {str(v) for v in sans.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in sans.get_values_for_type(x509.IPAddress)}
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    return set(names) <= have and cert.not_valid_after_utc > moment + datetime.timedelta(days=1)
