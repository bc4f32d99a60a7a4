"""The NAT64 feature: the :mod:`nat64` library's translator (or tayga) run for the mesh."""
