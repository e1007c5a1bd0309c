"""Exits with the evaluator's "simulation crashed" code, hoping for a free retry."""

from __future__ import annotations

import os

from hostile_common import StandingAgent


def get_entry_point() -> str:
    return "FakeSimulatorFault"


class FakeSimulatorFault(StandingAgent):
    def run_step(self, input_data, timestamp):  # type: ignore[no-untyped-def]
        if self.steps >= 2:
            os._exit(4)
        return super().run_step(input_data, timestamp)
