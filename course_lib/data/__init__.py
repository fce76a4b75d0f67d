"""Offline data sets of the course: Shakespeare's plays (``text``), Song ci poems in Chinese (``songci``) and
digits (``images``).

Everything is read from installed packages and cached under ``data/`` (see ``cache``).
"""

__all__ = ["cache", "text", "images", "budgets", "songci"]
