"""The instructor's reports on a graded batch:

- ``classreport``: ``OUT/report.html``, what the class got wrong (``autodiff101 report``);
- ``graphfeedback``: pictures of failed gradient checks in a submission's feedback;
- ``similarity``: ``OUT/similarity.html``, pairs whose own code is alike (``autodiff101 similarity``).
"""
