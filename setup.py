"""Builds the native NAT64 fast path (nat64/_fastpath.c); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and nat64.fastpath runs its
pure-Python reference instead (``gatewayctl nat64 counters`` shows which one runs).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("nat64._fastpath", ["nat64/_fastpath.c"], optional=True)])
