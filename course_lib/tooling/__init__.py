"""Course tooling, not ML: the offline classroom bundle (``bundle``), student/teacher editions
(``editions``) and the headless notebook runner that makes the committed outputs (``notebook_runner``)."""
