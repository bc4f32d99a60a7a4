"""Fuzz the Security object's RPK/certificate fields (/0/x/2,3,4,5,15, as a Bootstrap-Server may write
them) through gatewayd.lwm2m.dtls_pki's loaders (only ValueError may escape) and identity_text (nothing)."""

from __future__ import annotations

from gatewayd.lwm2m import dtls_pki


def TestOneInput(data: bytes) -> None:
    mode, usage = (data[0] % 4, data[1] % 5) if len(data) > 1 else (2, 3)
    parts = [*data[2:].split(b"\x00\x00", 2), b"", b""]
    own, key, server = parts[0], parts[1], parts[2]
    for load in (dtls_pki.certificate_der, dtls_pki.private_key_der, dtls_pki.public_key_der):
        try:
            load(data)
        except ValueError as exc:
            assert str(exc).startswith("not "), exc  # a fixed text: the bytes may be a private key
    try:
        dtls_pki.PkiSecurity(mode, own, key, server, usage).check()
    except ValueError:
        pass
    assert isinstance(dtls_pki.identity_text(mode, own), str)  # gatewayctl lwm2m psk: never raises


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
