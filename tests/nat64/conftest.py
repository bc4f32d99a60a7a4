"""Fixtures shared by the NAT64 tests."""

from __future__ import annotations

import pytest

import nat64.fastpath


@pytest.fixture(scope="module", params=["native", "python"])
def fast_path_impl(request):
    """Runs a module's tests twice: with the native fast path (nat64/_fastpath.c) and with its Python
    reference, as an install without a C compiler has it. Every Nat64 made meanwhile gets that one."""
    if request.param == "native":
        assert nat64.fastpath._NativeTranslator is not None, (
            "nat64/_fastpath.c is not built: install gcc and the Python headers, then `pip install -e .`")
        yield "native"
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nat64.fastpath, "_NativeTranslator", None)
        yield "python"
