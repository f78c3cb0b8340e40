"""datagate: a data validation gate for machine learning pipelines."""

__version__ = "0.1.0"
