"""The ASGI scope builders: exact spec 2.4 keys, path decoding, root_path mounting, every request-target form."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from asgi_core import (
    ASGI_VERSION,
    ConnectionInfo,
    build_http_scope,
    build_websocket_scope,
    decode_path,
    split_target,
)
from hypothesis import given
from hypothesis import strategies as st

CONN = ConnectionInfo(client=("192.0.2.10", 51000), server=("127.0.0.1", 8000), scheme="http")

# Path segments: any text without "/" (non-ASCII and reserved characters included), percent-encoded on the wire.
segments = st.lists(
    st.text(st.characters(exclude_characters="/", exclude_categories=["Cs"]), max_size=8), min_size=1, max_size=5
)
queries = st.binary(max_size=30).map(lambda raw: quote(raw, safe="=&;+%").encode("ascii"))
header_lists = st.lists(
    st.tuples(st.sampled_from([b"a", b"b", b"x-dup", b"cookie"]), st.binary(max_size=10)), max_size=8
)
roots = st.sampled_from(["", "/api", "/a/b", "/caf\u00e9"])


def http_scope(target: bytes, *, root_path: str = "", **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "conn": CONN,
        "method": "GET",
        "http_version": "1.1",
        "target": target,
        "headers": [],
        "root_path": root_path,
        "state": None,
        "extensions": {},
    }
    arguments.update(overrides)
    return dict(build_http_scope(**arguments))


def encode(path: str) -> bytes:
    return quote(path, safe="/").encode("ascii")


def test_http_scope_has_exactly_the_spec_keys() -> None:
    headers = [(b"host", b"example.com"), (b"accept", b"*/*")]
    scope = http_scope(b"/a/b?x=1", headers=headers, extensions={"http.response.trailers": {}})
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/a/b",
        "raw_path": b"/a/b",
        "query_string": b"x=1",
        "root_path": "",
        "headers": headers,
        "client": ("192.0.2.10", 51000),
        "server": ("127.0.0.1", 8000),
        "extensions": {"http.response.trailers": {}},
    }
    assert scope["asgi"] == ASGI_VERSION
    assert "state" not in scope  # no lifespan state: no key, as the spec says


@given(segments, queries)
def test_path_is_percent_decoded_utf8_and_raw_path_is_the_wire_bytes(parts: list[str], query: bytes) -> None:
    path = "/" + "/".join(parts)
    raw = encode(path)
    scope = http_scope(raw + b"?" + query)
    assert scope["path"] == path
    assert scope["raw_path"] == raw
    assert scope["query_string"] == query


@given(segments, queries, roots)
def test_root_path_is_in_path_whether_the_proxy_kept_or_stripped_it(
    parts: list[str], query: bytes, root: str
) -> None:
    app_path = "/" + "/".join(parts)
    kept = http_scope(encode(root + app_path) + b"?" + query, root_path=root)
    stripped = http_scope(encode(app_path) + b"?" + query, root_path=root)
    for scope in (kept, stripped):
        assert scope["root_path"] == root
        assert scope["query_string"] == query
        assert scope["path"].startswith(root)
        if not app_path.startswith(root + "/"):  # otherwise the two deployments are indistinguishable
            assert scope["path"] == root + app_path
            assert scope["raw_path"] == encode(root + app_path)
    if root:
        assert not kept["path"].startswith(root + root + "/")  # never doubled


def test_root_path_prefix_matches_whole_segments_only() -> None:
    # The proxy stripped "/api" from "/api/apiary": "/apiary" is the app's own path, not the mount point.
    assert http_scope(b"/apiary", root_path="/api")["path"] == "/api/apiary"
    assert http_scope(b"/apiary", root_path="/api")["raw_path"] == b"/api/apiary"
    assert http_scope(b"/api/apiary", root_path="/api")["path"] == "/api/apiary"
    assert http_scope(b"/api", root_path="/api")["path"] == "/api"
    assert http_scope(b"/api/", root_path="/api")["path"] == "/api/"
    assert http_scope(b"/", root_path="/api")["path"] == "/api/"


def test_non_ascii_root_path_is_percent_encoded_in_raw_path() -> None:
    scope = http_scope(b"/x", root_path="/caf\u00e9")
    assert scope["path"] == "/caf\u00e9/x"
    assert scope["raw_path"] == b"/caf%C3%A9/x"
    kept = http_scope(b"/caf%C3%A9/x", root_path="/caf\u00e9")
    assert kept["path"] == "/caf\u00e9/x"
    assert kept["raw_path"] == b"/caf%C3%A9/x"


def test_non_ascii_and_invalid_utf8_paths() -> None:
    assert decode_path(b"/caf%C3%A9/%E2%9C%93") == "/caf\u00e9/\u2713"
    assert decode_path(b"/%F0%9F%90%8D") == "/\U0001f40d"
    assert decode_path(b"/a%20b%2Fc") == "/a b/c"  # an encoded slash decodes; raw_path keeps it apart
    assert decode_path(b"/bad%FFbyte") == "/bad\ufffdbyte"
    assert decode_path(b"/caf\xc3\xa9") == "/caf\u00e9"  # raw UTF-8 bytes, should a parser let them through
    assert decode_path(b"/100%") == "/100%"  # a stray percent sign is kept, not an error


@given(header_lists)
def test_headers_keep_order_and_duplicates(headers: list[tuple[bytes, bytes]]) -> None:
    scope = http_scope(b"/", headers=headers)
    assert scope["headers"] == headers


def test_state_is_a_shallow_copy_per_request() -> None:
    shared = {"pool": ["connection"], "count": 1}
    first = http_scope(b"/", state=shared)
    second = http_scope(b"/", state=shared)
    assert first["state"] == shared
    assert first["state"] is not shared
    first["state"]["count"] = 2
    first["state"]["new"] = True
    assert shared == {"pool": ["connection"], "count": 1}
    assert second["state"] == {"pool": ["connection"], "count": 1}
    assert first["state"]["pool"] is shared["pool"]  # shallow: the objects themselves are shared


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query"),
    [
        pytest.param(b"/a/b?c=d", "/a/b", b"/a/b", b"c=d", id="origin"),
        pytest.param(b"/a?", "/a", b"/a", b"", id="origin-empty-query"),
        pytest.param(b"/a?b?c", "/a", b"/a", b"b?c", id="origin-question-in-query"),
        pytest.param(b"http://example.com/a/b?c=d", "/a/b", b"/a/b", b"c=d", id="absolute"),
        pytest.param(b"https://example.com:8443/x%20y", "/x y", b"/x%20y", b"", id="absolute-port"),
        pytest.param(b"http://example.com", "/", b"/", b"", id="absolute-no-path"),
        pytest.param(b"http://example.com?q=1", "/", b"/", b"q=1", id="absolute-query-only"),
        pytest.param(b"example.com:443", "example.com:443", b"example.com:443", b"", id="authority"),
        pytest.param(b"*", "*", b"*", b"", id="asterisk"),
    ],
)
def test_request_target_forms(target: bytes, path: str, raw_path: bytes, query: bytes) -> None:
    assert split_target(target) == (raw_path, query)
    method = {b"*": "OPTIONS", b"example.com:443": "CONNECT"}.get(target, "GET")
    scope = http_scope(target, method=method)
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (path, raw_path, query)


@pytest.mark.parametrize(("target", "method"), [(b"*", "OPTIONS"), (b"example.com:443", "CONNECT")])
def test_root_path_is_not_glued_onto_targets_without_a_path(target: bytes, method: str) -> None:
    scope = http_scope(target, method=method, root_path="/api")
    assert scope["path"] == target.decode()
    assert scope["raw_path"] == target
    assert scope["root_path"] == "/api"


def test_websocket_scope() -> None:
    secure = ConnectionInfo(client=("192.0.2.1", 1), server=("127.0.0.1", 443), scheme="https")
    headers = [(b"sec-websocket-protocol", b"chat, superchat"), (b"sec-websocket-protocol", b" v2 ,")]
    scope = build_websocket_scope(
        conn=secure,
        http_version="1.1",
        target=b"/caf%C3%A9/ws?token=a",
        headers=headers,
        root_path="/api",
        state={"k": 1},
        extensions={"websocket.http.response": {}},
    )
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "wss"
    assert scope["path"] == "/api/caf\u00e9/ws"
    assert scope["raw_path"] == b"/api/caf%C3%A9/ws"
    assert scope["query_string"] == b"token=a"
    assert scope["subprotocols"] == ["chat", "superchat", "v2"]
    assert scope["state"] == {"k": 1}
    assert scope["headers"] == headers
    assert "method" not in scope
    plain = build_websocket_scope(
        conn=CONN, http_version="1.1", target=b"/", headers=[], root_path="", state=None, extensions={}
    )
    assert plain["scheme"] == "ws"
    assert plain["subprotocols"] == []
    assert "state" not in plain
