"""What the border router must remember across restarts: the active dataset (so a restart
rejoins the same network with the same key) and the ULA /48 its OMR prefix comes from."""

from __future__ import annotations

import ipaddress
import json
import secrets
from pathlib import Path

from common.files import write_private
from ncp.meshcop import Dataset, MeshCoPError


class ThreadState:
    """Files under the state directory, all mode 0600."""

    def __init__(self, state_dir: str):
        self.dir = Path(state_dir)
        self.dataset_path = self.dir / "dataset.hex"
        self.border_path = self.dir / "border.json"
        self.border_agent_id_path = self.dir / "border_agent_id"

    def load_dataset(self) -> Dataset | None:
        try:
            text = self.dataset_path.read_text()
        except FileNotFoundError:
            return None
        try:
            return Dataset.from_hex(text)
        except MeshCoPError as exc:
            raise MeshCoPError(f"{self.dataset_path}: {exc} (fix it, or remove it to form a new network)") from None

    def save_dataset(self, dataset: Dataset) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.dataset_path, dataset.hex() + "\n")

    def ula_prefix(self) -> ipaddress.IPv6Network:
        """This router's ULA /48 (RFC 4193 random global ID), generated once."""
        try:
            data = json.loads(self.border_path.read_text())
            return ipaddress.IPv6Network(data["ula_prefix"])
        except (FileNotFoundError, KeyError, ValueError):
            pass
        prefix = ipaddress.IPv6Network((b"\xfd" + secrets.token_bytes(5) + bytes(10), 48))
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.border_path, json.dumps({"ula_prefix": str(prefix)}) + "\n")
        return prefix

    def border_agent_id(self) -> bytes:
        """16 random bytes made once (otbr-agent keeps its own in its settings): the REST API's ``ba-id``
        and the ``id`` of the ``_meshcop._udp`` record, by which Home Assistant tells border routers apart."""
        try:
            value = bytes.fromhex(self.border_agent_id_path.read_text().strip())
            if len(value) == 16:
                return value
        except (FileNotFoundError, ValueError):
            pass
        value = secrets.token_bytes(16)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.border_agent_id_path, value.hex() + "\n")
        return value
