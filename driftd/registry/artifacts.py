"""Which artifact URIs the registry accepts, and where a local artifact may be read from.

A version's artifact URI is what a model server or a retrain loads. Accepting any URI would let
a caller point them at ``file:///etc/shadow``, ``../../etc/passwd`` or a cloud metadata endpoint,
or forge lines in logs and terminals. ``ArtifactPolicy.check`` (at registration) refuses a
scheme that is not configured, control and invisible characters (also percent-encoded), ``..``
segments, credentials, a loopback, link-local or metadata host, and a local path outside the
configured roots; ``local_path`` checks again where an artifact is read, after resolving
symlinks. Messages name the value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import url2pathname

from driftd.registry.errors import InvalidRequest
from driftd.textsafe import first_unsafe

DEFAULT_SCHEMES = ("file", "gs", "https", "s3")
MAX_URI_CHARS = 4096
SCHEME_PATTERN = r"^[a-z][a-z0-9+.-]{0,31}$"
_HOSTED = frozenset({"http", "https", "s3", "gs"})
_SHOWN_CHARS = 200
# Cloud instance metadata services: by name, and by address where it is not link-local.
_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)


class InvalidArtifact(InvalidRequest, ValueError):
    """An artifact URI the policy refuses (HTTP 422); the message names it and what is allowed."""


def _shown(uri: str) -> str:
    """The URI as a message shows it: quoted, escaped, and cut when long."""
    cut = uri if len(uri) <= _SHOWN_CHARS else uri[:_SHOWN_CHARS] + "…"
    return repr(cut)


def _ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, including the legacy IPv4 forms that resolvers
    accept (``2852039166``, ``0xa9.0xfe.0xa9.0xfe``); None for a DNS name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _host_problem(host: str) -> str | None:
    """Why a network host must not be fetched from (None: it may)."""
    name = host.rstrip(".").lower()
    if not name.isascii():
        return "has a non-ASCII host; write it in its xn-- (punycode) form"
    if name in _METADATA_NAMES:
        return f"names the cloud metadata service {name!r}"
    if name == "localhost" or name.endswith(".localhost"):
        return f"names a loopback host ({name})"
    ip = _ip_of(name)
    if ip is None:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _METADATA_ADDRESSES:
        return f"names the cloud metadata address {ip}"
    for kind, bad in (
        ("link-local (cloud metadata)", ip.is_link_local),
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
    ):
        if bad:
            return f"names a {kind} address ({ip})"
    return None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True)
class ArtifactPolicy:
    """Allowed schemes, and the directories local artifacts may live under (None: anywhere,
    for trusted in-process callers; ``driftd.registry.configure`` always sets them)."""

    schemes: frozenset[str] = frozenset(DEFAULT_SCHEMES)
    roots: tuple[str, ...] | None = None

    @classmethod
    def create(cls, schemes: Iterable[str], roots: Iterable[Path | str] | None) -> ArtifactPolicy:
        """A policy from settings: relative roots count from the working directory; each root
        is kept as written (absolute) and with its symlinks resolved."""
        kept: tuple[str, ...] | None = None
        if roots is not None:
            found: list[str] = []
            for r in roots:
                for p in (Path(posixpath.normpath(Path(r).absolute())), Path(r).resolve()):
                    if str(p) not in found:
                        found.append(str(p))
            kept = tuple(found)
        return cls(frozenset(s.lower() for s in schemes), kept)

    def allowed(self) -> str:
        """What this policy allows, for messages."""
        schemes = ", ".join(sorted(self.schemes)) or "none"
        text = f"allowed: schemes {schemes} (registry.artifact_schemes)"
        if "file" in self.schemes and self.roots is not None:
            text += f"; local files under {', '.join(self.roots) or 'no directory'}"
            text += " (registry.artifact_roots)"
        return text

    def _refuse(self, uri: str, problem: str, say_allowed: bool = False) -> InvalidArtifact:
        tail = f"; {self.allowed()}" if say_allowed else ""
        return InvalidArtifact(f"artifact URI {_shown(uri)} {problem}{tail}")

    def check(self, uri: str) -> str:
        """``uri`` when the policy allows it; else raise ``InvalidArtifact`` saying why."""
        if not uri:
            raise self._refuse(uri, "is empty; give a URI such as s3://bucket/key", True)
        if len(uri) > MAX_URI_CHARS:
            raise self._refuse(uri, f"is longer than {MAX_URI_CHARS} characters")
        decoded = unquote(uri)
        bad = first_unsafe(uri) or first_unsafe(decoded)
        if bad is not None:
            problem = f"contains the control or invisible character {bad!r} (refused encoded too)"
            raise self._refuse(uri, problem)
        try:
            parts = urlsplit(uri)
        except ValueError as exc:
            raise self._refuse(uri, f"is not a valid URI ({exc})") from None
        if not parts.scheme or len(parts.scheme) == 1:  # one letter: a Windows drive
            problem = "is not a URI; give one with a scheme, e.g. file:///abs/path/model.pt"
            raise self._refuse(uri, problem, True)
        if parts.scheme not in self.schemes:
            raise self._refuse(uri, f"has scheme {parts.scheme!r}, which is not allowed", True)
        segments = re.split(r"[/\\]", unquote(parts.path))
        if ".." in segments:
            raise self._refuse(uri, "contains a '..' segment (path traversal)")
        if "@" in parts.netloc:
            raise self._refuse(uri, "contains credentials (user@host); the audit log stores it")
        if parts.scheme == "file":
            self._check_file(uri, parts)
        else:
            self._check_host(uri, parts)
        return uri

    def _check_file(self, uri: str, parts: SplitResult) -> None:
        if parts.netloc not in ("", "localhost"):
            raise self._refuse(uri, f"names host {parts.netloc!r}; a file URI is local (file:///…)")
        if parts.query or parts.fragment:
            raise self._refuse(uri, "has a query or fragment; a file URI names a path only")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise self._refuse(uri, "is not absolute; give file:///abs/path/model.pt")
        if self.roots is not None:
            normal = posixpath.normpath(path)
            if not any(_inside(normal, root) for root in self.roots):
                raise self._refuse(uri, "is outside the allowed roots", True)

    def _check_host(self, uri: str, parts: SplitResult) -> None:
        try:
            host = parts.hostname or ""
            _ = parts.port  # raises ValueError on a bad port
        except ValueError as exc:
            raise self._refuse(uri, f"has an invalid host or port ({exc})") from None
        if not host:
            if parts.scheme in _HOSTED:
                raise self._refuse(uri, f"needs a host (or bucket): {parts.scheme}://HOST/…")
            return
        if "%" in host:
            raise self._refuse(uri, "has a percent-encoded host")
        problem = _host_problem(host)
        if problem is not None:
            raise self._refuse(uri, problem)

    def local_path(self, uri: str) -> Path:
        """The file a ``file://`` artifact names, checked again where it is read: the URI as
        at registration, and the path with its symlinks resolved against the roots."""
        self.check(uri)
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise self._refuse(uri, "is not local; only file:// artifacts can be read here")
        path = Path(url2pathname(unquote(parts.path))).resolve()
        if self.roots is not None and not any(_inside(str(path), r) for r in self.roots):
            raise self._refuse(uri, f"resolves to {str(path)!r}, outside the allowed roots", True)
        return path
