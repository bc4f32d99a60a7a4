"""An OpenThread-like NCP simulator: Spinel over HDLC-lite on stdio, the mesh as a TUN in a namespace.

Run it as ``python -m ncp.sim --netns NAME --node a --node b`` (see ``--help``).  The protocol core,
:class:`SimNcp`, is sans-I/O and usable on its own in tests.
"""

from .addresses import MeshConfig
from .config import SimConfig
from .core import SimNcp
from .topology import Node

__all__ = ["MeshConfig", "Node", "SimConfig", "SimNcp"]
