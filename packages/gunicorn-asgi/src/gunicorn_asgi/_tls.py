"""The server's SSLContext from Gunicorn's TLS settings and its `ssl_context` hook.

A certificate or key that cannot be loaded stops the worker: serving plaintext where TLS was asked for would
expose every request, so there is no fallback.
"""

from __future__ import annotations

import ssl
from typing import Any

from asgi_core import CertificateFiles

from ._config_map import setting
from ._errors import StartupError


def tls_enabled(cfg: Any) -> bool:
    return bool(setting(cfg, "certfile") or setting(cfg, "keyfile"))


def certificate_files(cfg: Any) -> CertificateFiles | None:
    """`--certfile` and `--keyfile`, for protocols that run TLS themselves (QUIC)."""
    return (
        CertificateFiles(setting(cfg, "certfile"), setting(cfg, "keyfile") or None) if tls_enabled(cfg) else None
    )


def build_ssl_context(cfg: Any) -> ssl.SSLContext | None:
    """The context for the listening sockets, or `None` without TLS (the Server sets ALPN on it)."""
    if not tls_enabled(cfg):
        return None
    certfile, keyfile = setting(cfg, "certfile"), setting(cfg, "keyfile")

    def default_factory() -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=setting(cfg, "ca_certs"))
        context.load_cert_chain(certfile=certfile, keyfile=keyfile)
        context.verify_mode = ssl.VerifyMode(setting(cfg, "cert_reqs", ssl.CERT_NONE))
        ciphers = setting(cfg, "ciphers")
        if ciphers:
            context.set_ciphers(ciphers)
        return context

    hook = setting(cfg, "ssl_context")
    try:
        context = hook(cfg, default_factory) if hook is not None else default_factory()
    except Exception as exc:  # noqa: BLE001 - any failure here means no TLS, and TLS was asked for
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise StartupError(
            f"TLS is configured (certfile={certfile!r}, keyfile={keyfile!r}) but the SSL context could not be "
            f"built: {detail}. Check --certfile, --keyfile, --ca-certs, --ciphers and the ssl_context hook; "
            "the worker will not serve plaintext instead"
        ) from None
    if not isinstance(context, ssl.SSLContext):
        raise StartupError(f"the ssl_context hook must return an ssl.SSLContext, not {type(context).__name__}")
    return context
