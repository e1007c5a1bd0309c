"""The SUMO track: a GPU-free driving benchmark with the CARLA leaderboard's contract.

Public API (see ``docs/sumo-track.md``):

- :mod:`~lbcloud.tracks.sumo.simulator` — ``serve(port, *, once=False, pid_file=None) -> int`` runs the
  simulator server (``lbcloud track sumo simulator``); ``server_command(port)`` is SUMO's command line.
- :mod:`~lbcloud.tracks.sumo.evaluator` — ``evaluate(EvaluatorOptions) -> ExitCode`` runs the evaluator
  (``lbcloud track sumo evaluate``); ``ExitCode`` holds the exit codes the dispatcher relies on;
  ``load_instances(routes, subset, repetitions)`` checks a route file without running anything.
- :mod:`~lbcloud.tracks.sumo.agent_api` — what participants import: ``AutonomousAgent``,
  ``VehicleControl``, the sensor readings, ``SENSOR_ICONS`` and ``validate_sensors``.
- :mod:`~lbcloud.tracks.sumo.route_sets` — ``PRESETS``, ``shipped_route_file(name)``,
  ``generate_route_set(spec)`` and ``route_set_xml(routes)``.
- :mod:`~lbcloud.tracks.sumo.network` — ``Town`` and ``network_file(town)`` (the cached network).
"""
