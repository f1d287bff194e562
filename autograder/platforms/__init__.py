"""The places a course plugs the grader in, one module per platform:

- ``gradescope``: the Gradescope autograder zip (``autodiff101 gradescope``) and what it runs;
- ``prairielearn``: a PrairieLearn externally graded question (``autodiff101 prairielearn``);
- ``canvas``: a graded batch as a Canvas gradebook import (``autodiff101 grade --canvas``);
- ``nbgrader`` and ``otter``: the assignment for those tools (``autodiff101 export``), whose test
  cells run the kit's compiled checks in the student's kernel.

The two exports share ``export_source`` (the instructor's notebook both start from),
``kernel`` (what a test cell runs, ``kernel.assert_check``) and ``wheel`` (the kit as a wheel
inside an export).
"""
