"""nbgrader's settings for this course: run ``nbgrader`` from the repository root (docs/classroom.md).

``python -m course_lib nbgrader`` writes the assignments into ``artifacts/nbgrader/source/``; nbgrader
keeps its release, submitted, autograded and feedback folders and its gradebook beside them.
"""

import os

c = get_config()  # noqa: F821 - nbgrader (traitlets) provides get_config when it reads this file

c.CourseDirectory.root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "artifacts", "nbgrader")
c.CourseDirectory.course_id = "ssl-course"
# the course's own stub, so the student version reads like the student edition (course_lib.tooling.editions)
c.ClearSolutions.code_stub = {"python": "raise NotImplementedError  # your code here"}
# a chapter trains models while it runs: minutes per cell in the class profile (autograde with
# COURSE_PROFILE=smoke for a quick pass)
c.Execute.timeout = 1800
c.Execute.kernel_name = "python3"
