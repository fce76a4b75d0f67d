"""The course's models, one concept per module: ``transformer`` (blocks, encoder, causal LM), ``mlm``
(masked-LM head and sequence classifier on that encoder), ``rnn`` (character RNN/LSTM/GRU), ``ngram``
(counted n-gram baselines: add-k and Kneser-Ney), ``gan`` (MLP and DCGAN generators/discriminators),
``encoders`` (the SimCLR CNN encoder and projection head) and ``classifier`` (the digit classifier that judges
GAN samples). Models return tensors; losses live in ``course_lib.objectives`` and training in ``course_lib.train``."""

__all__: list[str] = []
