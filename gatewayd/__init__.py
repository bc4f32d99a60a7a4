"""gatewayd: a Thread border router for the Raspberry Pi that bridges to LwM2M servers."""

__version__ = "0.1.0"
