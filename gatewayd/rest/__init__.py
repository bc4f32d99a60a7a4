"""The otbr-agent-compatible REST API (what python-otbr-api, Home Assistant's OTBR integration, calls)."""
