"""The course's models, one concept per module: ``ngram``, ``rnn`` (more chapters add theirs)."""

__all__: list[str] = []
