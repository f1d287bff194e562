"""The self-check that comes with this handout: run it with `python check.py`.

A copy of the course kit's standard-library-only modules; generated, do not edit.
"""
