"""Activations by name: ta.activations.get("gelu").forward(z) / .backward(z, a, grad)."""
