"""Writes until the disk is full: home, /tmp, its working folder, the attempt folders."""

from __future__ import annotations

import glob
import os

from hostile_common import StandingAgent, report

CHUNK = b"\0" * (4 * 1024 * 1024)


def _fill(folder: str) -> int:
    written = 0
    try:
        with open(os.path.join(folder, "filler.bin"), "wb") as fh:
            for _ in range(2048):  # at most 8 GiB
                fh.write(CHUNK)
                written += len(CHUNK)
    except OSError as err:
        report("fill stopped", f"{folder} after {written >> 20} MiB: {err}")
    return written


def get_entry_point() -> str:
    return "DiskFill"


class DiskFill(StandingAgent):
    def setup(self, path_to_conf_file: str) -> None:
        super().setup(path_to_conf_file)
        folders = [os.path.expanduser("~"), "/tmp", os.getcwd(), *glob.glob(self.config.get("attempts", "/x") + "/*")]
        total = sum(_fill(folder) for folder in folders)
        raise RuntimeError(f"wrote {total >> 20} MiB")
