"""How CGI variables become the ASGI scope: path sources, root_path, scheme precedence, client and server,
headers, and the requests that must not reach the app. Pure functions: no sockets needed."""

from __future__ import annotations

from typing import Any

import pytest
from asgi_core import Config, ConnectionInfo, HeadRejected, Scope, ServerContext
from asgi_uwsgi import Request
from asgi_uwsgi._scope import request_scope

TRANSPORT = ConnectionInfo(client=("127.0.0.1", 50000), server=("127.0.0.1", 8000), scheme="http")


async def _app(scope: Scope, receive: Any, send: Any) -> None:
    pass


def scope_for(*pairs: tuple[str, str], config: Config | None = None, state: dict[str, Any] | None = None) -> Scope:
    variables = tuple((name.encode(), value.encode("utf-8")) for name, value in pairs)
    if not any(name == b"REQUEST_METHOD" for name, _ in variables):
        variables = ((b"REQUEST_METHOD", b"GET"), *variables)
    length = next((int(value) for name, value in variables if name == b"CONTENT_LENGTH" and value), 0)
    context = ServerContext(app=_app, config=config or Config(), state=state)
    return request_scope(Request(0, 0, variables, length), TRANSPORT, context)


def test_request_uri_gives_raw_path_and_query_string_gives_the_query() -> None:
    scope = scope_for(("REQUEST_URI", "/a%20b/c?ignored=1"), ("QUERY_STRING", "x=%41"), ("PATH_INFO", "/a b/c"))
    assert scope["path"] == "/a b/c"
    assert scope["raw_path"] == b"/a%20b/c"  # the client's encoding, since it decodes to PATH_INFO
    assert scope["query_string"] == b"x=%41"


def test_query_comes_from_request_uri_when_query_string_is_absent() -> None:
    scope = scope_for(("REQUEST_URI", "/p?a=1&b"))
    assert scope["query_string"] == b"a=1&b"
    assert scope["path"] == "/p"


def test_path_info_is_the_fallback_and_is_re_encoded_for_raw_path() -> None:
    scope = scope_for(("PATH_INFO", "/100% café/ok"), ("QUERY_STRING", "q=1"))
    assert scope["path"] == "/100% café/ok"
    assert scope["raw_path"] == b"/100%25%20caf%C3%A9/ok"
    assert scope["query_string"] == b"q=1"


def test_no_path_at_all_is_the_root() -> None:
    assert scope_for()["path"] == "/"


def test_absolute_form_request_uri_is_reduced_to_its_path() -> None:
    scope = scope_for(("REQUEST_URI", "http://example.org/x?y=1"))
    assert scope["path"] == "/x"
    assert scope["query_string"] == b"y=1"


@pytest.mark.parametrize(
    ("script_name", "request_uri", "path_info", "root_path", "path"),
    [
        ("/app", "/app/x", None, "/app", "/app/x"),
        ("/app/", "/app/x", None, "/app", "/app/x"),
        ("/app", None, "/x", "/app", "/app/x"),  # a front end that stripped the mount point
        ("/", "/x", None, "", "/x"),
        ("app", "/app/x", None, "/app", "/app/x"),
    ],
)
def test_script_name_is_the_root_path(
    script_name: str, request_uri: str | None, path_info: str | None, root_path: str, path: str
) -> None:
    pairs = [("SCRIPT_NAME", script_name)]
    if request_uri is not None:
        pairs.append(("REQUEST_URI", request_uri))
    if path_info is not None:
        pairs.append(("PATH_INFO", path_info))
    scope = scope_for(*pairs)
    assert scope["root_path"] == root_path
    assert scope["path"] == path


def test_config_root_path_applies_without_script_name() -> None:
    scope = scope_for(("REQUEST_URI", "/x"), config=Config(root_path="/mounted"))
    assert scope["root_path"] == "/mounted"
    assert scope["path"] == "/mounted/x"
    assert (
        scope_for(("REQUEST_URI", "/x"), ("SCRIPT_NAME", ""), config=Config(root_path="/m"))["root_path"] == "/m"
    )


@pytest.mark.parametrize(
    ("pairs", "scheme"),
    [
        ((), "http"),
        ((("REQUEST_SCHEME", "https"),), "https"),
        ((("REQUEST_SCHEME", "http"), ("HTTPS", "on")), "https"),
        ((("REQUEST_SCHEME", "https"), ("HTTPS", "off")), "http"),
        ((("HTTPS", "1"),), "https"),
        ((("HTTPS", "ON"),), "https"),
        ((("HTTPS", ""), ("REQUEST_SCHEME", "https")), "https"),
        ((("UWSGI_SCHEME", "https"), ("REQUEST_SCHEME", "http")), "https"),
        ((("UWSGI_SCHEME", "http"), ("HTTPS", "on")), "http"),
        ((("wsgi.url_scheme", "https"), ("HTTPS", "off")), "https"),
        ((("UWSGI_SCHEME", "gopher"), ("REQUEST_SCHEME", "https")), "https"),
        ((("REQUEST_SCHEME", "wss"),), "https"),
    ],
)
def test_scheme_precedence(pairs: tuple[tuple[str, str], ...], scheme: str) -> None:
    assert scope_for(*pairs)["scheme"] == scheme


def test_client_and_server_are_nginx_s_view() -> None:
    scope = scope_for(
        ("REMOTE_ADDR", "2001:db8::7"), ("REMOTE_PORT", "5555"), ("SERVER_NAME", "site"), ("SERVER_PORT", "443")
    )
    assert scope["client"] == ("2001:db8::7", 5555)
    assert scope["server"] == ("site", 443)


def test_missing_or_odd_addresses_fall_back() -> None:
    scope = scope_for(("REMOTE_ADDR", "unix:"), ("REMOTE_PORT", ""), ("SERVER_NAME", ""), ("SERVER_PORT", "x"))
    assert scope["client"] == ("unix:", None)
    assert scope["server"] == TRANSPORT.server
    scope = scope_for(("SERVER_ADDR", "10.0.0.1"), ("REMOTE_PORT", "99999"))
    assert scope["client"] is None
    assert scope["server"] == ("10.0.0.1", 8000)


@pytest.mark.parametrize(
    ("protocol", "version"),
    [("HTTP/1.0", "1.0"), ("HTTP/1.1", "1.1"), ("HTTP/2.0", "2"), ("", "1.1"), ("X", "1.1")],
)
def test_http_version_from_server_protocol(protocol: str, version: str) -> None:
    assert scope_for(("SERVER_PROTOCOL", protocol))["http_version"] == version


def test_headers_from_http_vars_and_cgi_content_vars() -> None:
    scope = scope_for(
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_TYPE", "text/plain"),
        ("CONTENT_LENGTH", "5"),
        ("HTTP_HOST", "h"),
        ("HTTP_X_FORWARDED_FOR", "203.0.113.9"),
        ("HTTP_TRANSFER_ENCODING", "chunked"),
        ("HTTP_CONTENT_TYPE", "text/plain"),
        ("HTTP_CONTENT_LENGTH", "999"),
        ("DOCUMENT_ROOT", "/srv"),
        ("REMOTE_ADDR", "192.0.2.1"),
    )
    assert scope["headers"] == [
        (b"content-type", b"text/plain"),
        (b"content-length", b"5"),
        (b"host", b"h"),
        (b"x-forwarded-for", b"203.0.113.9"),
    ]
    # REMOTE_ADDR is the client even when the request carries X-Forwarded-For: nginx's realip module is the
    # place to trust a proxy in front of nginx.
    assert scope["client"] == ("192.0.2.1", None)


def test_http_content_type_is_kept_when_the_cgi_variable_is_empty() -> None:
    scope = scope_for(("CONTENT_TYPE", ""), ("HTTP_CONTENT_TYPE", "a/b"))
    assert scope["headers"] == [(b"content-type", b"a/b")]


def test_state_is_copied_and_raw_variables_are_exposed() -> None:
    state = {"db": "pool"}
    scope = scope_for(("REQUEST_URI", "/"), ("APP_ENV", "prod"), state=state)
    assert scope["state"] == state
    assert scope["state"] is not state
    assert (b"APP_ENV", b"prod") in scope["extensions"]["uwsgi"]["vars"]
    assert scope["extensions"]["uwsgi"]["modifier1"] == 0
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"


@pytest.mark.parametrize("value", ["websocket", "WebSocket", "foo, websocket"])
def test_websocket_upgrade_is_refused(value: str) -> None:
    with pytest.raises(HeadRejected) as info:
        scope_for(("HTTP_UPGRADE", value), ("HTTP_CONNECTION", "Upgrade"))
    assert info.value.status == 501


def test_other_upgrades_are_plain_requests() -> None:
    scope = scope_for(("HTTP_UPGRADE", "h2c"))
    assert (b"upgrade", b"h2c") in scope["headers"]


def test_limits_follow_config() -> None:
    config = Config(limit_request_fields=2, limit_request_field_size=0, limit_request_line=0)
    scope_for(("HTTP_A", "1"), ("HTTP_B", "x" * 20000), ("REQUEST_URI", "/" + "a" * 9000), config=config)
    with pytest.raises(HeadRejected) as info:
        scope_for(("HTTP_A", "1"), ("HTTP_B", "2"), ("HTTP_C", "3"), config=config)
    assert info.value.status == 431


# ---- PATH_INFO routes, REQUEST_URI only when it agrees (nginx `rewrite ... break`) -------------------


def test_rewritten_path_info_is_the_path_and_raw_path_follows_it() -> None:
    # location /old/ { rewrite ^/old/(.*)$ /new/$1 break; }: PATH_INFO is $document_uri, REQUEST_URI the original
    scope = scope_for(("REQUEST_URI", "/old/a%20b?x=1"), ("PATH_INFO", "/new/a b"), ("QUERY_STRING", "x=1"))
    assert scope["path"] == "/new/a b"
    assert scope["raw_path"] == b"/new/a%20b"
    assert scope["query_string"] == b"x=1"


@pytest.mark.parametrize(
    ("request_uri", "path_info", "raw_path"),
    [
        ("/caf%C3%A9/x", "/café/x", b"/caf%C3%A9/x"),  # the client's own encoding is kept
        ("/a%2Fb", "/a/b", b"/a%2Fb"),  # an encoded slash only raw_path can tell apart
        ("/p?q=1", "/p", b"/p"),
        ("http://example.org/p?q", "/p", b"/p"),
    ],
)
def test_request_uri_gives_raw_path_when_it_decodes_to_path_info(
    request_uri: str, path_info: str, raw_path: bytes
) -> None:
    scope = scope_for(("REQUEST_URI", request_uri), ("PATH_INFO", path_info))
    assert scope["path"] == path_info
    assert scope["raw_path"] == raw_path


def test_path_normalised_by_nginx_is_the_path() -> None:
    # nginx merges slashes and resolves dot segments before routing: the app sees what nginx routed on
    scope = scope_for(("REQUEST_URI", "/a/../b//c"), ("PATH_INFO", "/b/c"))
    assert scope["path"] == "/b/c"
    assert scope["raw_path"] == b"/b/c"


@pytest.mark.parametrize(
    ("request_uri", "path_info", "path", "raw_path"),
    [
        ("/app/x%41", "/app/xA", "/app/xA", b"/app/x%41"),  # PATH_INFO with the mount point (nginx's default)
        ("/app/x%41", "/xA", "/app/xA", b"/app/x%41"),  # PATH_INFO without it (uwsgi_modifier1 30 style)
        ("/app/old", "/app/new", "/app/new", b"/app/new"),  # rewritten under the mount point
        ("/app/old", "/new", "/app/new", b"/app/new"),
    ],
)
def test_script_name_and_path_info_agree_with_request_uri(
    request_uri: str, path_info: str, path: str, raw_path: bytes
) -> None:
    scope = scope_for(("SCRIPT_NAME", "/app"), ("REQUEST_URI", request_uri), ("PATH_INFO", path_info))
    assert scope["root_path"] == "/app"
    assert (scope["path"], scope["raw_path"]) == (path, raw_path)


# ---- header variables follow the field grammar -------------------------------------------------------


@pytest.mark.parametrize("value", ["a\x07b", "del\x7f", "nul\x00", "cr\rlf", "esc\x1b[0m", "\x01"])
def test_header_value_with_a_control_character_is_refused(value: str) -> None:
    with pytest.raises(HeadRejected) as info:
        scope_for(("HTTP_X_THING", value))
    assert info.value.status == 400
    assert "HTTP_X_THING" in str(info.value)


def test_header_value_with_a_tab_and_obs_text_is_accepted() -> None:
    scope = scope_for(("HTTP_X_THING", "a\tb caf\u00e9"))
    assert (b"x-thing", "a\tb café".encode()) in scope["headers"]


@pytest.mark.parametrize("name", ["HTTP_X(Y", "HTTP_X Y", "HTTP_", "HTTP_X\x07"])
def test_header_variable_whose_name_is_not_a_token_is_refused(name: str) -> None:
    with pytest.raises(HeadRejected) as info:
        scope_for((name, "v"))
    assert info.value.status == 400


@pytest.mark.parametrize("method", ["G T", "GET\x07", "(GET)"])
def test_request_method_must_be_a_token(method: str) -> None:
    with pytest.raises(HeadRejected) as info:
        scope_for(("REQUEST_METHOD", method))
    assert info.value.status == 400


def test_fragment_in_the_variables_never_reaches_path_or_query() -> None:
    # nginx drops a fragment itself; another front end may pass it on in REQUEST_URI and QUERY_STRING
    scope = scope_for(
        ("REQUEST_URI", "/t/2375?page=1#posts"), ("PATH_INFO", "/t/2375"), ("QUERY_STRING", "page=1#posts")
    )
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/t/2375", b"/t/2375", b"page=1")


@pytest.mark.parametrize("pairs", [(("REQUEST_URI", "example.com:443"),), (("PATH_INFO", "example.com:443"),)])
def test_connect_in_authority_form_is_a_400_never_a_500(pairs: tuple[tuple[str, str], ...]) -> None:
    with pytest.raises(HeadRejected) as info:
        scope_for(("REQUEST_METHOD", "CONNECT"), *pairs)
    assert info.value.status == 400


def test_the_first_of_repeated_variables_counts() -> None:
    # `uwsgi_param HTTPS on;` beside uwsgi_params' own `HTTPS $https if_not_empty` sends HTTPS twice over TLS
    scope = scope_for(("HTTPS", "on"), ("HTTPS", "off"), ("PATH_INFO", "/one"), ("PATH_INFO", "/two"))
    assert (scope["scheme"], scope["path"]) == ("https", "/one")
