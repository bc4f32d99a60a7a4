"""The Thread feature: form or join the network, wpan0 (the mesh as a host interface), network data,
and the ThreadView its dependents subscribe to."""
