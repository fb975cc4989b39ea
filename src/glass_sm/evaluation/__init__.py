"""Evaluation: metrics, skill with confidence intervals, aggregation, in situ validation, intercomparison,
triple collocation, trends and break tests; the paper's claims tested on a run's tables (``claims``) and the label
ceiling (``ceiling``: the labels' own accuracy against the truth)."""
