"""The DNS64 feature: the :mod:`nat64.dns64` resolver answering on the mesh-facing addresses."""
