"""Builds the native fast paths: NAT64's (nat64/_fastpath.c) and the DNS64 server's UDP hits
(nat64/dns64/_udpfast.c); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and each runs its pure-Python
reference instead (``gatewayctl nat64 counters`` and ``gatewayctl dns64`` show which one runs).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("nat64._fastpath", ["nat64/_fastpath.c"], optional=True),
                   Extension("nat64.dns64._udpfast", ["nat64/dns64/_udpfast.c"], optional=True)])
