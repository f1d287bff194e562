"""The assignment for other grading tools: nbgrader course folders and otter-grader master notebooks.

Both are generated from solutions/ with the handout's notebook generator, and both run the
kit's compiled checks inside the student's kernel (``kernel.assert_check``).
"""
