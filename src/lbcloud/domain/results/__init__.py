"""The leaderboard results engine: pure model, reader/writer, scorers, merge, routes, EvalAI format.

Modules (see each docstring for its public names):

- :mod:`.model` — frozen values of a result file (2.x and 1.0) and the format's constants.
- :mod:`.reader` — ``parse_results(data, source)``: bytes/text → ``ResultsFile``, errors with JSON paths.
- :mod:`.writer` — ``dumps_results(results)``: byte-exact file text.
- :mod:`.scoring` — per-route penalty, driving score, status; ``build_route_record(...)``.
- :mod:`.statistics` — global record (2.x/1.0), values, entry status, validation, ``finalize_results``.
- :mod:`.merge` — merging partial files / route records, with the spec's deliberate deviations.
- :mod:`.routes` — route XML, ``--routes-subset`` selection and the worker split.
- :mod:`.evalai_format` — EvalAI ``results.json``, ``stdout.txt`` and lowercase keys.
"""
