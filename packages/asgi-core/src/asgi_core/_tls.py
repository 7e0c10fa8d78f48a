"""The ASGI TLS extension (asgiref's "TLS Extension"), built once per TLS connection from its SSL object.

`scope["extensions"]["tls"]` tells the app what the handshake settled: the client certificate chain and its
subject under mutual TLS, the protocol version and the cipher suite. The dict is made when the connection is
(`ConnectionInfo.from_transport`) and shared by every request on it, so no protocol package builds it and no
request pays for it.

Python's `ssl` module does not expose the server's own certificate on a server-side connection: the `Server`
records it on its `SSLContext` (`record_server_certificate`) when it knows the certificate's file; otherwise
`server_cert` is `None`, which the extension allows ("unable to provide this").
"""

from __future__ import annotations

import ssl
from typing import Any, Final

#: `SSLObject.version()` -> the protocol version number the extension reports (as on the wire).
_TLS_VERSIONS: Final = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
#: OpenSSL cipher name -> IANA cipher suite number; filled from the first context that knows the name. The
#: numbers are global (they are the wire values), so one table serves every context.
_CIPHER_IDS: dict[str, int] = {}
#: Attribute names Python's `getpeercert()` uses -> the short names RFC 4514 section 3 defines.
_RFC4514_KEYS: Final = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
_RFC4514_SPECIAL: Final = frozenset('"+,;<>\\')


#: The attribute of an `ssl.SSLContext` holding its own certificate, PEM-encoded, once recorded.
_SERVER_CERT: Final = "asgi_server_certificate"
_PEM_END: Final = "-----END CERTIFICATE-----"


def record_server_certificate(context: ssl.SSLContext, certfile: str) -> None:
    """Remember on `context` the leaf certificate of `certfile` (the first in the chain), for `server_cert`."""
    with open(certfile, encoding="ascii", errors="replace") as file:
        text = file.read()
    end = text.find(_PEM_END)
    start = text.rfind("-----BEGIN CERTIFICATE-----", 0, end) if end >= 0 else -1
    if start >= 0:
        setattr(context, _SERVER_CERT, text[start : end + len(_PEM_END)] + "\n")


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The extension's fields for one established TLS connection."""
    chain = _peer_chain(ssl_object)
    cipher = ssl_object.cipher()
    return {
        "server_cert": getattr(ssl_object.context, _SERVER_CERT, None),
        "client_cert_chain": chain,
        "client_cert_name": _subject_name(ssl_object) if chain else None,
        # The handshake fails when a presented certificate does not verify (CERT_REQUIRED and CERT_OPTIONAL
        # alike), so an app only ever sees verified certificates, or none.
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": _cipher_id(ssl_object.context, cipher[0]) if cipher else None,
    }


def _peer_chain(ssl_object: ssl.SSLObject) -> tuple[str, ...]:
    """The client's certificates as it sent them, leaf first, PEM-encoded; empty without a client cert."""
    inner: Any = getattr(ssl_object, "_sslobj", None)
    get_chain = getattr(inner, "get_unverified_chain", None)  # Python 3.10+; the public wrapper is 3.13+
    if get_chain is not None:
        # On the server side the leaf is put first by Python itself, as None when the client sent none.
        certificates = get_chain() or []
        return tuple(str(cert.public_bytes()) for cert in certificates if cert is not None)  # PEM by default
    leaf = ssl_object.getpeercert(binary_form=True)
    return (ssl.DER_cert_to_PEM_cert(leaf),) if leaf else ()


def _subject_name(ssl_object: ssl.SSLObject) -> str | None:
    """The client certificate's subject as an RFC 4514 string (`CN=alice,O=Example`), most specific first."""
    peer = ssl_object.getpeercert()
    # ((("countryName", "FR"),), (("commonName", "alice"),)): typeshed types the values loosely.
    subject: Any = peer.get("subject") if peer else None
    if not subject:
        return None
    rdns = ["+".join(f"{_RFC4514_KEYS.get(key, key)}={_escape(value)}" for key, value in rdn) for rdn in subject]
    return ",".join(reversed(rdns))  # getpeercert lists the RDNs root first; RFC 4514 writes them leaf first


def _escape(value: str) -> str:
    escaped = "".join(f"\\{char}" if char in _RFC4514_SPECIAL else char for char in value).replace("\0", "\\00")
    if escaped[:1] in ("#", " "):
        escaped = "\\" + escaped
    if len(value) > 1 and value.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return escaped


def _cipher_id(context: ssl.SSLContext, name: str) -> int | None:
    if name not in _CIPHER_IDS:
        for cipher in context.get_ciphers():
            # OpenSSL's id holds the two-byte IANA number in its low 16 bits (0x03001302 -> 0x1302).
            _CIPHER_IDS.setdefault(cipher["name"], cipher["id"] & 0xFFFF)
    return _CIPHER_IDS.get(name)
