"""Reference solutions to the exercises, kept apart from the notebooks (one module per chapter)."""
