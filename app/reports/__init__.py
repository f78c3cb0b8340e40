"""The report: its model (the service's contract), its storage and its HTML pages."""
