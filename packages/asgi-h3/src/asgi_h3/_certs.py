"""The server's certificate as files: aioquic runs its own TLS 1.3 and cannot read an `ssl.SSLContext`.

A server hands every datagram protocol its `ssl.SSLContext`, whose certificate and key cannot be read back. So
whoever builds that context records the files on it (`attach_certificate`); HTTP/3 loads them from there. The
Gunicorn `ssl_context` hook `ssl_context_hook` does it for `--certfile` / `--keyfile`.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple

from asgi_core import ConfigError

#: The attribute of an `ssl.SSLContext` that names its certificate files (a `CertificateFiles`).
CERTIFICATE_ATTRIBUTE = "asgi_certificate_files"


class CertificateFiles(NamedTuple):
    certfile: str
    keyfile: str | None = None
    password: str | bytes | None = None


def attach_certificate(
    context: ssl.SSLContext,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    password: str | bytes | None = None,
) -> ssl.SSLContext:
    """Record on `context` the files its certificate chain was loaded from (it is not loaded again here)."""
    files = CertificateFiles(os.fspath(certfile), os.fspath(keyfile) if keyfile is not None else None, password)
    setattr(context, CERTIFICATE_ATTRIBUTE, files)
    return context


def certificate_of(context: ssl.SSLContext) -> CertificateFiles:
    """The files recorded on `context`; a `ConfigError` saying how to record them when there are none."""
    files = getattr(context, CERTIFICATE_ATTRIBUTE, None)
    if not isinstance(files, CertificateFiles):
        raise ConfigError(
            "http_protocols",
            "h3",
            "a TLS context whose certificate files HTTP/3 can load: build it with asgi_h3.attach_certificate("
            "context, certfile, keyfile), or under Gunicorn set `ssl_context = asgi_h3.ssl_context_hook` in the "
            "config file",
        )
    return files


def ssl_context_hook(conf: Any, default_ssl_context_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """A Gunicorn `ssl_context` server hook: the default context, with `--certfile` / `--keyfile` recorded for
    HTTP/3. In a Gunicorn config file: `from asgi_h3 import ssl_context_hook as ssl_context`."""
    context = default_ssl_context_factory()
    return attach_certificate(context, conf.certfile, conf.keyfile or None)
