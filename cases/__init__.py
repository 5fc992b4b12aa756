"""The shipped policy cases (installed as ``harness.bundled_cases``)."""
