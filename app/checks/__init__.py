"""Engines that check a dataset: Great Expectations suites and deepchecks checks."""
