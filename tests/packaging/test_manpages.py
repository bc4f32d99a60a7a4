"""The generated man pages: valid roff, and complete with respect to the code they come from."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from devtools import manpages
from gatewayd.config.schema import walk


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("man")
    return {p.name: p for p in manpages.write_all(out)}


def rendered(path: Path) -> str:
    """The page as man shows it, plain text, with groff's warnings turned into failures."""
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    result = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-rLL=200n", str(path)], capture_output=True,
                            env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"})
    assert not result.stderr, f"groff warnings for {path.name}:\n{result.stderr.decode()}"
    text = result.stdout.decode()
    # Undo overstriking (bold/underline) so the text can be searched.
    while "\b" in text:
        i = text.index("\b")
        text = text[: i - 1] + text[i + 1:]
    return text.replace("\u2010", "-").replace("\u2212", "-")


def test_three_pages_with_their_sections(pages):
    assert set(pages) == {"gatewayd.8", "gatewayctl.8", "gatewayd.toml.5"}
    for name, path in pages.items():
        section = name.rsplit(".", 1)[1]
        assert f'" "{section}" ' in path.read_text().splitlines()[1]


def test_gatewayd_page_lists_every_option_and_command(pages):
    from gatewayd.__main__ import main

    text = rendered(pages["gatewayd.8"])
    parser = manpages.parser_of(main)
    for action in parser._actions:
        for option in action.option_strings:
            assert option in text
    assert "check-config" in text and "SIGHUP" in text and "NCP_STATE" in text


def test_gatewayctl_page_lists_every_option(pages):
    from gatewayd.ctl import main

    text = rendered(pages["gatewayctl.8"])
    for action in manpages.parser_of(main)._actions:
        for option in action.option_strings:
            assert option in text


def test_config_page_documents_every_schema_key_with_its_default(pages):
    text = " ".join(rendered(pages["gatewayd.toml.5"]).split())
    for path, section in walk():
        assert f"[{path}]" in text
        for key in section.keys:
            assert f"{key.name} = " in text, f"{path}.{key.name} not documented"
    assert 'url = "cascoda+uart:///dev/serial0?baudrate=1000000"' in text


def test_pages_are_reproducible(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = {name: render() for name, render in manpages.PAGES.items()}
    assert first == {name: render() for name, render in manpages.PAGES.items()}
    assert '"2023-11-14"' in first["gatewayd.8"]


def test_escaping_keeps_text_out_of_roff_requests():
    assert manpages.esc(".hidden") == "\\&.hidden"
    assert manpages.esc("a\\b-c") == "a\\eb\\-c"
    assert manpages.esc("\u2265") == "\\[u2265]"


def test_parser_capture_runs_nothing_else():
    calls = []

    def main(argv=None):
        import argparse

        parser = argparse.ArgumentParser(prog="x")
        parser.parse_args(argv)
        calls.append("ran")

    assert manpages.parser_of(main).prog == "x"
    assert calls == []
