"""``python -m ncp.sim``: a simulated OpenThread NCP on stdin/stdout (run it on a pty, like hardware).

Example, as the daemon's link URL would spawn it::

    python -m ncp.sim --netns thread0 --own-netns --node sensor:mtd --node lamp:0011223344556677 \\
        --control /run/ncp-sim.sock --state /var/lib/ncp-sim.json --router-upgrade-delay 5 --dnssd-server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from .app import SimApp
from .config import SimConfig
from .control import ControlError, parse_eui64
from .core import SimNcp
from .generation import GENERATIONS
from .radio_socket import SLOTS, RadioSocket
from .topology import NODE_KINDS


def _node(text: str) -> tuple[str, bytes | None, str]:
    """``NAME[:EUI64][:ftd|mtd]``; the EUI-64 may itself contain colons."""
    name, _, rest = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError("node name missing")
    kind = "ftd"
    head, _, last = rest.rpartition(":")
    if last in NODE_KINDS:
        kind, rest = last, head
    try:
        return name, parse_eui64(rest) if rest else None, kind
    except ControlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _eui64(text: str) -> bytes:
    try:
        return parse_eui64(text)
    except ControlError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _radio_port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535 - SLOTS:
        raise argparse.ArgumentTypeError(f"radio port must be in 1..{65535 - SLOTS}")
    return port


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ncp.sim", description=__doc__.splitlines()[0])
    p.add_argument(
        "--link",
        choices=("hdlc", "cascoda"),
        default="hdlc",
        help="raw HDLC-lite Spinel, or wrapped in Cascoda SOM/TLV messages",
    )
    p.add_argument("--eui64", type=_eui64, help="factory EUI-64 (HWADDR); random if not given")
    p.add_argument("--netns", help="network namespace holding the mesh TUN (created if missing)")
    p.add_argument("--tun", default="mesh0", help="TUN device name in the namespace")
    p.add_argument("--own-netns", action="store_true", help="delete the namespace on exit")
    p.add_argument(
        "--node",
        action="append",
        type=_node,
        default=[],
        metavar="NAME[:EUI64][:ftd|mtd]",
        help="a simulated Thread node (repeatable); an FTD (the default) becomes a router after a while",
    )
    p.add_argument("--control", help="Unix socket for JSON fault-injection commands")
    p.add_argument("--state", help="file keeping the dataset across restarts (the NCP's flash)")
    p.add_argument("--firmware", help="file keeping the firmware version a DFU installed (--link cascoda)")
    p.add_argument("--leader-delay", type=float, default=0.5, help="seconds from stack up to leader")
    p.add_argument("--attach-delay", type=float, default=0.2, help="seconds for a node to attach")
    p.add_argument(
        "--mle-interval", type=float, default=10.0, help="seconds between MLE multicasts handed to the host (0: never)"
    )
    p.add_argument(
        "--router-upgrade-delay",
        type=float,
        default=120.0,
        help="seconds before an FTD child becomes a router (OpenThread: random up to 120; inf: never)",
    )
    p.add_argument(
        "--reattach-delay",
        type=float,
        default=33.0,
        help="seconds a restarted former leader stays detached before it leads again (OpenThread: 30-34.5), "
        "unless the host sets NET_ROLE to leader",
    )
    p.add_argument(
        "--child-restore-delay",
        type=float,
        default=0.5,
        help="seconds after it leads again until a restarted NCP lists the children it restored (0.2-0.9)",
    )
    p.add_argument(
        "--dnssd-server", action="store_true", help="answer DNS to the NCP's own addresses itself (OT_DNSSD_SERVER)"
    )
    p.add_argument(
        "--ncp-generation",
        choices=sorted(GENERATIONS),
        default="2025",
        help="which OpenThread NCP to imitate: 2023 has no THREAD_ACTIVE_DATASET_TLVS",
    )
    p.add_argument(
        "--joinable-pskd",
        help="a network this NCP can join as a joiner with this PSKd (SET MESHCOP_JOINER_COMMISSIONING)",
    )
    p.add_argument(
        "--radio",
        type=_radio_port,
        metavar="PORT",
        help="share a radio with the simulated NCPs started with the same PORT in the same --netns (each with "
        "its own --tun): one mesh, one leader, the border routers' network data merged",
    )
    p.add_argument(
        "--radio-timeout",
        type=float,
        default=3.0,
        help="seconds of silence after which a peer on the shared radio is gone (Thread: 120 for a leader)",
    )
    p.add_argument("--seed", type=int, help="seed for reproducible randomness")
    p.add_argument("--log", help="log file (stderr is not used when it is the Spinel pty)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _setup_logging(args: argparse.Namespace) -> None:
    # With forkpty, stderr may be the same pty as stdout: anything written there corrupts the stream.
    shares_pty = os.isatty(2) and os.path.samestat(os.fstat(1), os.fstat(2))
    target = args.log or (os.devnull if shares_pty else None)
    if target is not None:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s ncp.sim[%(process)d] %(levelname)s %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    persisted = None
    if args.state and os.path.exists(args.state):
        try:
            with open(args.state) as f:
                persisted = json.load(f)
        except (OSError, ValueError) as exc:
            logging.getLogger("ncp.sim").warning("cannot read state %s: %s", args.state, exc)
    config = SimConfig(
        leader_delay=args.leader_delay,
        attach_delay=args.attach_delay,
        mle_interval=args.mle_interval,
        router_upgrade_delay=args.router_upgrade_delay,
        reattach_delay=args.reattach_delay,
        child_restore_delay=args.child_restore_delay,
        dnssd_server=args.dnssd_server,
        ncp_generation=args.ncp_generation,
        eui64=args.eui64,
        joinable_pskd=args.joinable_pskd,
        seed=args.seed,
        shared_radio=args.radio is not None,
        radio_timeout=args.radio_timeout,
    )
    core = SimNcp(config, persisted)
    for name, eui, kind in args.node:
        core.add_node(name, eui, 0.0, kind)
    mesh = None
    if args.netns:
        from .mesh import MeshTun  # needs pyroute2 and root; only imported when a mesh is asked for

        mesh = MeshTun(args.netns, args.tun, own_netns=args.own_netns, shared=args.radio is not None)
    radio = RadioSocket(args.radio, args.netns) if args.radio is not None else None
    try:
        if mesh is not None:
            mesh.open()
        if radio is not None:
            radio.open()
        app = SimApp(core, mesh, link=args.link, control_path=args.control, state_path=args.state,
                     firmware_path=args.firmware, radio=radio)
        return asyncio.run(app.run())
    finally:
        if radio is not None:
            radio.close()
        if mesh is not None:
            mesh.close()


if __name__ == "__main__":
    sys.exit(main())
