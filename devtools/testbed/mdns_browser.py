"""An mDNS browser for one service type, run in a LAN namespace by the tests (python-zeroconf's browser,
as Home Assistant and commissioner apps browse ``_meshcop._udp``).

``python -m devtools.testbed.mdns_browser _meshcop._udp.local.`` prints ``ready`` once it listens, then
one JSON line per change the browser reports: ``{"change": "added"|"updated"|"removed", "name": ...,
"port": ..., "server": ..., "addresses": [...], "txt": [[key, hex value or null], ...]}``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from ncp.border_agent import decode_txt


def emit(change: str, name: str, info: AsyncServiceInfo | None = None) -> None:
    out: dict[str, object] = {"change": change, "name": name}
    if info is not None:
        out.update(port=info.port, server=info.server, addresses=info.parsed_addresses(),
                   txt=[[k, v.hex() if v is not None else None] for k, v in decode_txt(info.text or b"")])
    print(json.dumps(out), flush=True)


async def main(service_type: str) -> None:
    aiozc = AsyncZeroconf(ip_version=IPVersion.All)
    pending: set[asyncio.Task[None]] = set()

    async def resolve(change: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if await info.async_request(aiozc.zeroconf, 3000):
            emit(change, name, info)

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            emit("removed", name)
            return
        task = asyncio.create_task(resolve(state_change.name.lower(), name))
        pending.add(task)
        task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(aiozc.zeroconf, [service_type], handlers=[on_change])
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await browser.async_cancel()
        await aiozc.async_close()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "_meshcop._udp.local."))
    except KeyboardInterrupt:
        pass
