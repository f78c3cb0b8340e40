"""Configuration, database, errors and logging shared by the whole service."""
