"""Issue 18's attacks replayed from outside against a real `datagate serve`.

Run them with `python -m bench.attacks.run`.
"""
