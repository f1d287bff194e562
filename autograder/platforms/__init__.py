"""The places a course plugs the grader into (PrairieLearn; Gradescope, Canvas and the
nbgrader and otter exports join it here)."""
