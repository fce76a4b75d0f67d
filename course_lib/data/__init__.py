"""Offline data sets of the course: Shakespeare's plays (``text``) and digits (``images``).

Everything is read from installed packages and cached under ``data/`` (see ``cache``).
"""

__all__ = ["cache", "text", "images", "budgets"]
