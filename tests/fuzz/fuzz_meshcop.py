"""Fuzz target: MeshCoP active dataset decoder; only MeshCoPError may escape."""

from ncp.meshcop import Dataset, MeshCoPError


def TestOneInput(data: bytes) -> None:
    try:
        ds = Dataset.from_tlvs(data)
    except MeshCoPError:
        return
    try:
        again = Dataset.from_tlvs(ds.to_tlvs())
    except MeshCoPError as exc:  # whatever decodes must re-encode
        raise AssertionError(f"decoded dataset does not re-encode: {exc}") from exc
    if again != ds:
        raise AssertionError("dataset changed across a re-encode")
    repr(ds)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(TestOneInput)
