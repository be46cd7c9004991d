"""Optimizers with torch.optim's algorithms, usable standalone on NumPy arrays."""
