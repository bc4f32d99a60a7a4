"""The configuration file: what an admin editing gatewayd.toml sees."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gatewayd.config import ConfigError, load, parse
from gatewayd.config import types as t
from gatewayd.config.render import default_toml, dump, key_default, markdown_reference
from gatewayd.config.schema import Key, walk
from ncp.links.url import SCHEMES as NCP_SCHEMES
from tests.conftest import PYTHON, ROOT

SHIPPED = ROOT / "config" / "gatewayd.toml"


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, "-m", "gatewayd", "check-config", "-c", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)


def test_shipped_config_passes_check_config():
    result = check_config(SHIPPED)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_shipped_config_and_reference_are_generated_from_the_schema():
    assert SHIPPED.read_text() == default_toml(), "regenerate: python -m gatewayd.config.render > config/gatewayd.toml"
    reference = ROOT / "docs" / "configuration.md"
    assert reference.read_text() == markdown_reference(), (
        "regenerate: python -m gatewayd.config.render markdown > docs/configuration.md")


def test_reference_tables_have_four_cells_in_every_row():
    """A ``|`` in a key's text (such as ``none|rtscts``) must not add a column to the rendered table."""
    rows = [line for line in markdown_reference().splitlines() if line.startswith("| `")]
    assert rows
    for row in rows:
        assert len(re.split(r"(?<!\\)\|", row)) == 6, row


def test_shipped_config_documents_every_key():
    text = SHIPPED.read_text()
    for line in default_toml().splitlines():
        if line.startswith("#") and " = " in line and not line.startswith("# "):
            assert line in text


BAD = [
    ('[ncp]\nurl = "spinel+hdlc+uart:///dev/ttyACM0"\nrequest_timeout = "fast"\n',
     'gatewayd.toml:3: ncp.request_timeout: expected a number from 0.1 to 60, got "fast"'),
    ("\n\n[thread]\nchannel = 27\n",
     "gatewayd.toml:4: thread.channel: expected an integer from 11 to 26, got 27"),
    ('[thread]\nchanel = 12\n', "gatewayd.toml:2: thread.chanel: unknown key (did you mean channel?)"),
    ('[bogus]\nx = 1\n', "gatewayd.toml:1: bogus: unknown key"),
    ('[nat64]\nbackend = "jool2"\n', 'gatewayd.toml:2: nat64.backend: expected one of "builtin", "tayga", got "jool2"'),
    ('[nat64]\nprefix = "64:ff9b::/129"\n',
     'gatewayd.toml:2: nat64.prefix: expected an IPv6 prefix such as 64:ff9b::/96, got "64:ff9b::/129" '
     "('129' is not a valid netmask)"),
    ('[nat64]\nprefix = "64:ff9b::/80"\n',
     'gatewayd.toml:2: nat64.prefix: expected an IPv6 prefix such as 64:ff9b::/96, got "64:ff9b::/80" '
     "(RFC 6052 allows /32, /40, /48, /56, /64 or /96)"),
    ('[border]\nforwarding = "yes"\n', 'gatewayd.toml:2: border.forwarding: expected true or false, got "yes"'),
    ('[nat64]\npool = "192.168.255.1"\n',
     'gatewayd.toml:2: nat64.pool: expected an array, each an IPv4 address or prefix such as '
     '192.168.255.1/32, got "192.168.255.1"'),
    ('[log]\nlevel = "loud"\n',
     'gatewayd.toml:2: log.level: expected one of "debug", "info", "notice", "warning", "error", got "loud"'),
    ('[log.components]\nncpp = "debug"\n',
     "gatewayd.toml:2: log.components.ncpp: unknown name, expected one of daemon, control, ncp, thread, "
     "border, border_agent, nat64, dns64, lwm2m, commissioning"),
    ('[thread]\ndataset = "zz"\n', "gatewayd.toml:2: thread.dataset: expected hexadecimal bytes"),
    ('[thread]\ndataset = "00"\ndataset_file = "x"\n',
     "gatewayd.toml:2: thread.dataset: set dataset or dataset_file, not both"),
    ('[ncp]\nurl = \n', "gatewayd.toml:2: syntax error: Invalid value"),
    ('ncp = 5\n', "gatewayd.toml:1: ncp: expected a [ncp] table"),
    # The issue's examples, as check-config prints them.
    ('[ncp]\nurl = "http://example.com/ncp"\n',
     'gatewayd.toml:2: ncp.url: expected a spinel+hdlc+uart://, cascoda+uart:// or spinel+hdlc+forkpty:// URL, '
     'got "http://example.com/ncp" (unknown scheme http)'),
    ('[lwm2m.server]\nuri = "ftp://server:21"\n',
     'gatewayd.toml:2: lwm2m.server.uri: expected a coap://, coaps://, coap+tcp:// or coaps+tcp:// URI such as '
     'coap://host:5683, or "", '
     'got "ftp://server:21" (scheme ftp is not coap, coaps, coap+tcp or coaps+tcp)'),
    ('[[lwm2m.device]]\nendpoint = "a"\naddress = "fd00::1"\nserver = "http://x"\n',
     'gatewayd.toml:4: lwm2m.device[0].server: expected a coap://, coaps://, coap+tcp:// or coaps+tcp:// URI such as '
     'coap://host:5683, or "", '
     'got "http://x" (scheme http is not coap, coaps, coap+tcp or coaps+tcp)'),
    ("[daemon]\nstop_timeout = nan\n",
     "gatewayd.toml:2: daemon.stop_timeout: expected a number from 0.5 to 60, got nan"),
    ("[lwm2m]\nupdate_margin = nan\n",
     "gatewayd.toml:2: lwm2m.update_margin: expected a number from 1 to 3600, got nan"),
    ("[log]\nrate_limit_interval = inf\n",
     "gatewayd.toml:2: log.rate_limit_interval: expected a number ≥ 0 (not inf or nan), got inf"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(": ")[1] for _, m in BAD])
def test_bad_config_names_file_line_and_key(tmp_path: Path, text: str, message: str):
    path = tmp_path / "gatewayd.toml"
    path.write_text(text)
    result = check_config(path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"{tmp_path}/{message}"


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse("[ncp]\nrequest_timeout = -1\n[thread]\nchannel = 5\ninterfce = 'x'\n")
    assert [e.split(": ")[1] for e in err.value.errors] == ["ncp.request_timeout", "thread.channel",
                                                            "thread.interfce"]


def test_lines_inside_arrays_of_tables_and_dotted_keys():
    with pytest.raises(ConfigError) as err:
        parse('[log]\ncomponents.ncp = "loud"\n')
    assert err.value.errors[0].startswith("gatewayd.toml:2: log.components.ncp: expected one of")


def test_secret_from_file(tmp_path: Path):
    secret = tmp_path / "dataset.hex"
    secret.write_text("0e080000000000010000\n")
    path = tmp_path / "gatewayd.toml"
    path.write_text('[thread]\ndataset_file = "dataset.hex"\n')
    config = load(path)
    assert config.thread.dataset.reveal() == bytes.fromhex("0e080000000000010000")
    assert "0e08" not in repr(config.thread.dataset)
    assert dump(config.root)["thread"]["dataset"] == "********"
    assert config.warnings == []


def test_unreadable_secret_file_is_an_error_without_leaking(tmp_path: Path):
    (tmp_path / "key").write_text("not-hex-but-secret")
    path = tmp_path / "gatewayd.toml"
    path.write_text('[lwm2m.server]\npsk_key_file = "key"\n[thread]\ndataset_file = "missing"\n')
    with pytest.raises(ConfigError) as err:
        load(path)
    text = str(err.value)
    assert f"{path}:2: lwm2m.server.psk_key_file: {tmp_path}/key: expected hexadecimal bytes" in text
    assert f"{path}:4: thread.dataset_file: cannot read {tmp_path}/missing: No such file or directory" in text
    assert "not-hex-but-secret" not in text


def test_bad_inline_secret_is_an_error_without_leaking():
    with pytest.raises(ConfigError) as err:
        parse('[lwm2m.server]\npsk_key = "00112233-almost-the-key"\n')
    assert err.value.errors == ["gatewayd.toml:2: lwm2m.server.psk_key: expected hexadecimal bytes"]


def test_inline_secret_in_world_readable_file_warns(tmp_path: Path):
    path = tmp_path / "gatewayd.toml"
    path.write_text('[lwm2m.server]\npsk_key = "00112233"\n')
    path.chmod(0o644)
    warning = load(path).warnings[0]
    assert "lwm2m.server.psk_key" in warning and "chmod 0640" in warning
    assert "00112233" not in warning
    path.chmod(0o640)
    assert load(path).warnings == []
    result = check_config(path)
    assert result.returncode == 0


def test_missing_file_is_a_clear_error(tmp_path: Path):
    result = check_config(tmp_path / "nope.toml")
    assert result.returncode == 1
    assert "cannot read: No such file or directory" in result.stderr


def test_defaults_fill_unset_keys():
    config = parse("")
    assert config.ncp.request_timeout == 2.0
    assert config.thread.interface == "wpan0"
    assert str(config.nat64.prefix) == "64:ff9b::/96"
    assert config.control.mode == 0o660


@pytest.mark.parametrize(("text", "message"), [
    ('[[lwm2m.device]]\naddress = "fd00::1"\n',
     "gatewayd.toml:1: lwm2m.device[0].endpoint: required: the endpoint client name the server will see"),
    ('[[lwm2m.device]]\nendpoint = "a"\n',
     "gatewayd.toml:1: lwm2m.device[0].address: give exactly one of address and eui64"),
    ('[[lwm2m.device]]\nendpoint = "a"\naddress = "fd00::1"\n[[lwm2m.device]]\nendpoint = "a"\n'
     'address = "fd00::2"\n',
     'gatewayd.toml:5: lwm2m.device[1].endpoint: "a" is already used by another device'),
    ('[lwm2m]\nproxy_mode = "gateway"\n[lwm2m.gateway]\nenabled = true\n[[lwm2m.device]]\nendpoint = "a"\n'
     'address = "fd00::1"\nserver = "coap://[fd00::9]"\n',
     'gatewayd.toml:8: lwm2m.device[0].server: is for a registration of the device\'s own; in proxy_mode '
     '"gateway" it is reached through the gateway\'s registration: remove it or set proxy_mode = "registrations"'),
    # said once: not also as a PSK on a coap:// uri, which the device would never use
    ('[lwm2m]\nproxy_mode = "gateway"\n[lwm2m.server]\nuri = "coap://[fd00::9]"\n[lwm2m.gateway]\nenabled = true\n'
     '[[lwm2m.device]]\nendpoint = "a"\naddress = "fd00::1"\npsk_identity = "a"\n',
     'gatewayd.toml:10: lwm2m.device[0].psk_identity: is for a registration of the device\'s own; in proxy_mode '
     '"gateway" it is reached through the gateway\'s registration: remove it or set proxy_mode = "registrations"'),
])
def test_device_rules_across_keys(text: str, message: str):
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert err.value.errors == [message]


# ---- every key of a kind, walked from the schema --------------------------------------------------------------

def keys_of_schema() -> list[tuple[str, str, Key]]:
    """(table header as written in TOML, dotted key path as errors name it, key) for every key of the schema."""
    out = []
    for path, section in walk():
        header = f"[[{path}]]" if section.array else f"[{path}]"
        prefix = f"{path}[0]" if section.array else path
        out += [(header, f"{prefix}.{key.name}", key) for key in section.keys]
    return out


def nested_types(value_type: t.ValueType) -> list[t.ValueType]:
    """The types inside an array, table or inline table type (not the type itself)."""
    inner: list[t.ValueType] = []
    if isinstance(value_type, t.List):
        inner = [value_type.item]
    elif isinstance(value_type, t.Table):
        inner = [value_type.value]
    elif isinstance(value_type, t.InlineTable):
        inner = [item for _, item in value_type.fields]
    return [x for item in inner for x in (item, *nested_types(item))]


def is_lwm2m_uri(value_type: t.ValueType) -> bool:
    return value_type is t.LWM2M_URI_OR_EMPTY


def url_schemes(value_type: t.ValueType) -> tuple[str, ...]:
    """The schemes a URL type accepts; () for a type that is no URL."""
    if isinstance(value_type, t.NcpUrl):
        return tuple(NCP_SCHEMES)
    if is_lwm2m_uri(value_type):
        return t.LWM2M_SCHEMES
    return ()


KEYS = keys_of_schema()
URL_KEYS = [k for k in KEYS if url_schemes(k[2].type)]
FLOAT_KEYS = [k for k in KEYS if isinstance(k[2].type, t.Float)]
#: Schemes a user may plausibly write; each URL key is tried with every one it does not accept.
SCHEMES_TRIED = ("http", "https", "ftp", "file", "ssh", "coap", "coaps", "coap+tcp", "coaps+tcp", "coap+ws",
                 "lwm2m", "spinel+hdlc+uart", "cascoda+uart", "spinel+hdlc+forkpty", "spinel", "uart", "serial",
                 "hdlc+uart", "spinel+uart")
LEAD = "# gatewayd.toml\n\n"  # so the key sits on line 4, not on a line any fallback would give


def test_the_walk_finds_the_keys_the_issue_names():
    assert {p for _, p, _ in URL_KEYS} == {"ncp.url", "lwm2m.server.uri", "lwm2m.device[0].server"}
    assert {"daemon.stop_timeout", "lwm2m.update_margin", "log.rate_limit_interval",
            "lwm2m.thread_devices.absence_timeout", "lwm2m.device[0].timeout"} <= {p for _, p, _ in FLOAT_KEYS}


def test_no_url_or_number_hides_where_the_walk_does_not_look():
    """Arrays, tables and free sections hold no URL or float type; a new one must be added to the tests below."""
    for _, path, key in KEYS:
        for inner in nested_types(key.type):
            assert not isinstance(inner, t.Float | t.NcpUrl) and not is_lwm2m_uri(inner), path
    for path, section in walk():
        if section.free is not None:
            assert not isinstance(section.free, t.Float | t.NcpUrl) and not is_lwm2m_uri(section.free), path


def test_every_key_that_holds_a_uri_is_checked_as_one():
    """A server, URL or URI key typed as a plain string is how lwm2m.device.server slipped through."""
    for _, path, key in KEYS:
        if isinstance(key.type, t.Str) and not key.type.choices and not key.type.validate:
            words = f"{key.name} {key.type.expected}".lower()
            assert not any(w in words for w in ("url", "uri", "server", "://")), f"{path} is a plain string"


def setting(header: str, path: str, value: str) -> str:
    return f"{LEAD}{header}\n{path.rpartition('.')[2]} = {value}\n"


def expect_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert err.value.errors == [message]


@pytest.mark.parametrize(("header", "path", "key"), URL_KEYS, ids=[p for _, p, _ in URL_KEYS])
def test_every_url_key_refuses_every_other_scheme(header: str, path: str, key: Key):
    accepted = url_schemes(key.type)
    wrong = [s for s in SCHEMES_TRIED if s not in accepted]
    assert len(wrong) >= len(SCHEMES_TRIED) - 4
    for scheme in wrong:
        for value in (f"{scheme}://example.com:21/dev/ttyACM0", f"{scheme}:///dev/ttyACM0"):
            detail = f"unknown scheme {scheme}" if isinstance(key.type, t.NcpUrl) else \
                f"scheme {scheme} is not coap, coaps, coap+tcp or coaps+tcp"
            expect_error(setting(header, path, f'"{value}"'),
                         f'gatewayd.toml:4: {path}: expected {key.type.expected}, got "{value}" ({detail})')
    for value in ("/dev/ttyACM0", "example.com"):
        expect_error(setting(header, path, f'"{value}"'),
                     f'gatewayd.toml:4: {path}: expected {key.type.expected}, got "{value}" (no scheme)')
    assert all(f"{s}://" in key.type.expected for s in accepted), "the error names the accepted schemes"


@pytest.mark.parametrize(("header", "path", "key"), URL_KEYS, ids=[p for _, p, _ in URL_KEYS])
def test_every_url_key_takes_each_scheme_it_accepts(header: str, path: str, key: Key):
    for scheme in url_schemes(key.type):
        value = f"{scheme}:///dev/ttyACM0" if isinstance(key.type, t.NcpUrl) else f"{scheme}://[fd00::1]:5683"
        text = setting(header, path, f'"{value}"')
        if path.startswith("lwm2m.device"):
            text += 'endpoint = "a"\naddress = "fd00::2"\n'
        if scheme == "coaps" and path.startswith("lwm2m."):  # DTLS needs credentials (dtls_pki.check_security)
            text += 'psk_identity = "a"\npsk_key = "00"\n'
        parse(text)


@pytest.mark.parametrize(("value", "detail"), [
    ("coap://", "no host"),
    ("coaps://:5684", "no host"),
    ("coap:host", "no host"),
    ("coap:///path", "no host"),
    ("coap://host:99999", "Port out of range 0-65535"),
    ("coap://host:0", "port 0"),
    ("coap://[fd00::1", "Invalid IPv6 URL"),
    ("coap://two words", "contains spaces"),
    ("localhost:5683", "scheme localhost is not coap, coaps, coap+tcp or coaps+tcp"),
])
@pytest.mark.parametrize(("header", "path", "key"), [k for k in URL_KEYS if is_lwm2m_uri(k[2].type)],
                         ids=[p for _, p, k in URL_KEYS if is_lwm2m_uri(k.type)])
def test_lwm2m_server_uris_need_a_host(header: str, path: str, key: Key, value: str, detail: str):
    expect_error(setting(header, path, f'"{value}"'),
                 f'gatewayd.toml:4: {path}: expected {key.type.expected}, got "{value}" ({detail})')


def test_lwm2m_uri_scheme_case_is_normalised_and_empty_means_the_default():
    config = parse('[lwm2m.server]\nuri = "COAPS://Leshan.example:5684"\npsk_identity = "gw"\npsk_key = "00"\n')
    assert config.lwm2m.server.uri == "coaps://Leshan.example:5684"
    assert parse('[lwm2m.server]\nuri = ""\n').lwm2m.server.uri == ""


@pytest.mark.parametrize(("value", "detail"), [
    ("", "empty"),
    ("spinel+hdlc+uart://dev/ttyACM0", "unexpected host 'dev'; the path needs three slashes, "
                                       "e.g. spinel+hdlc+uart:///dev/ttyACM0"),
    ("cascoda+uart:///dev/serial0?flow-control=none",
     "unknown parameter 'flow-control' for cascoda+uart; allowed: baudrate, record"),
    ("spinel+hdlc+uart:///dev/ttyACM0?baudrate=fast", "baudrate must be a positive integer, not 'fast'"),
])
def test_ncp_url_is_checked_by_the_ncp_library(value: str, detail: str):
    expect_error(f'[ncp]\nurl = "{value}"\n',
                 f'gatewayd.toml:2: ncp.url: expected {t.NCP_URL.expected}, got "{value}" ({detail})')


@pytest.mark.parametrize("value", ["nan", "+nan", "-nan", "inf", "+inf", "-inf"])
@pytest.mark.parametrize(("header", "path", "key"), FLOAT_KEYS, ids=[p for _, p, _ in FLOAT_KEYS])
def test_every_float_key_refuses_nan_and_infinity(header: str, path: str, key: Key, value: str):
    shown = value.lstrip("+") if "inf" in value else "nan"
    expect_error(setting(header, path, value), f"gatewayd.toml:4: {path}: expected {key.type.expected}, got {shown}")


def test_every_default_written_out_passes():
    """Each key set explicitly to its documented default, as the shipped file shows it."""
    lines = []
    for path, section in walk():
        if section.array or section.free is not None:
            continue
        lines.append(f"[{path}]")
        lines += [f"{key.name} = {key_default(key)}" for key in section.keys]
    config = parse("\n".join(lines) + "\n")
    assert config.control.max_connections == 64 and config.control.idle_timeout == 10.0


@pytest.mark.parametrize(("text", "message"), [
    ("[control]\nmax_connections = 0\n", "gatewayd.toml:2: control.max_connections: expected an integer from 1 to "
                                          "1000, got 0"),
    ("[control]\nidle_timeout = nan\n", "gatewayd.toml:2: control.idle_timeout: expected a number from 0.1 to "
                                        "3600, got nan"),
])
def test_control_limits(text: str, message: str):
    expect_error(text, message)
