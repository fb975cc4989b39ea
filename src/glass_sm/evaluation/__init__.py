"""Evaluation: metrics, skill with confidence intervals, aggregation, in situ validation, intercomparison,
triple collocation, trends and break tests."""
