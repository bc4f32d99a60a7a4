"""The configuration file: what an admin editing gatewayd.toml sees."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gatewayd.config import ConfigError, load, parse
from gatewayd.config.render import default_toml, dump, markdown_reference
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
     "border, nat64, dns64, lwm2m"),
    ('[thread]\ndataset = "zz"\n', "gatewayd.toml:2: thread.dataset: expected hexadecimal bytes"),
    ('[thread]\ndataset = "00"\ndataset_file = "x"\n',
     "gatewayd.toml:2: thread.dataset: set dataset or dataset_file, not both"),
    ('[ncp]\nurl = \n', "gatewayd.toml:2: syntax error: Invalid value"),
    ('ncp = 5\n', "gatewayd.toml:1: ncp: expected a [ncp] table"),
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
])
def test_device_rules_across_keys(text: str, message: str):
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert err.value.errors == [message]
