"""Fuzz target: the ``_meshcop._udp`` TXT decoder and the NCP's BORDER_AGENT_MESHCOP_SERVICE_STATE; only
TxtError (and SpinelError, for the Spinel value) may escape."""

from ncp.border_agent import BorderAgentState, MeshCoPService, TxtError, decode_txt, encode_txt
from ncp.spinel import Prop, SpinelError, unpack_prop


def TestOneInput(data: bytes) -> None:
    try:
        entries = decode_txt(data)
    except TxtError:
        entries = None
    if entries is not None:
        if decode_txt(encode_txt(entries)) != entries:  # whatever decodes re-encodes to the same entries
            raise AssertionError("TXT entries changed across a re-encode")
        try:
            service = MeshCoPService.from_txt(entries)
        except TxtError:
            service = None
        if service is not None and MeshCoPService.from_txt(decode_txt(encode_txt(service.to_txt()))) != service:
            raise AssertionError("MeshCoP service changed across a re-encode")
    try:
        BorderAgentState.from_spinel(unpack_prop(Prop.BORDER_AGENT_MESHCOP_SERVICE_STATE, data))
    except (TxtError, SpinelError):
        pass


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
