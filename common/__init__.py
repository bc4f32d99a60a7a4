"""What every package of the project may use and which uses nothing of ours: asyncio helpers, one
backoff, TUN devices, Internet checksums, kernel network settings.

ncp/ and nat64/ are libraries that stand alone on top of this package; gatewayd/ composes them.
"""
