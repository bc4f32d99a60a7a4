"""The DNS64 server loads dnspython without importlib.metadata, and dnspython still works."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import json, sys
import nat64.dns64
import dns._features, dns.message, dns.name, dns.query
q = dns.message.make_query("bücher.example.", "AAAA", use_edns=0)
back = dns.message.from_wire(q.to_wire())
dns._features.force("doh", True)
print(json.dumps({
    "heavy": sorted(m for m in ("importlib.metadata", "email", "zipfile", "idna") if m in sys.modules),
    "question": back.question[0].to_text(),
    "forced": dns._features.have("doh"),
    "idna": dns._features.have("idna"),
}))
"""


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_dns64_imports_dnspython_without_importlib_metadata_and_it_still_works() -> None:
    got = run(PROBE)
    assert got["heavy"] == [], f"imported by the DNS64 server: {got['heavy']}"
    assert got["question"] == "xn--bcher-kva.example. IN AAAA"  # IDNA 2003 encodes this name the same
    assert got["forced"] is True and got["idna"] is False


def test_dnspython_imported_first_keeps_its_own_feature_probe() -> None:
    got = run("import dns.name\n" + PROBE)
    assert "importlib.metadata" in got["heavy"]
    assert got["question"] == "xn--bcher-kva.example. IN AAAA"
