"""fleetrun's engine: models, validation, fan-out, output, journal and backends.

Nothing under ``core`` imports Textual; front ends live in ``tui``.
"""
