"""Durable asynchronous validations: the job table, and the loop that drains it."""
