"""Fuzz target: MeshCoP active dataset decoder; only MeshCoPError may escape."""

from ncp.meshcop import Dataset, MeshCoPError


def TestOneInput(data: bytes) -> None:
    try:
        ds = Dataset.from_tlvs(data)
    except MeshCoPError:
        return
    again = Dataset.from_tlvs(ds.to_tlvs())
    if again != ds:
        raise AssertionError("dataset changed across a re-encode")
    repr(ds)


if __name__ == "__main__":
    import sys

    import atheris

    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
