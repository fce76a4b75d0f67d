"""The course's chapters, as ``python -m course_lib train NAME``, the benchmarks and the bundle see them.

One package per chapter, read in the order of its notebook: ``config`` (what you can change),
``task`` (what the training loop needs), ``study`` (the comparisons the notebook and
``metrics.json`` report). The one list of chapters is
:data:`course_lib.chapters.registry.CHAPTERS`.
"""
