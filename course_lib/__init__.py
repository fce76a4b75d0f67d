"""course_lib: the library behind the self-supervised deep learning course.

Importing the package has no side effects: no threads are set, no data is read,
no seeds are touched. Import the module you need, e.g.
``from course_lib import runtime, train``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
