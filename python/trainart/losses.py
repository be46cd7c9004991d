"""Losses by name: ta.losses.get("huber").forward(logits, target) / .backward(...)."""
