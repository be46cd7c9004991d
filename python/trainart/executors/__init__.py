"""Executors behind the Trainer (DESIGN §1): "numpy" (reference) and "cpu" (C++ engine)."""
