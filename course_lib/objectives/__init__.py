"""Training objectives, one module per idea, as pure tensor functions.

* :mod:`.lm` - next-token cross-entropy (notebooks 01, 05)
* ``.mlm`` - BERT masking and the masked-only loss (notebook 02)
* ``.gan`` - discriminator and generator losses (notebook 03)
* ``.infonce`` - NT-Xent / InfoNCE (notebook 04)

Import the module you need: ``from course_lib.objectives.lm import lm_loss``.
"""
