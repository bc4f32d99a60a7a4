"""gatewayd on the NCP simulator (the testbed's namespaces), for the commissioning commands and events."""

from tests.thread.conftest import topo  # noqa: F401 - the fixture, shared
