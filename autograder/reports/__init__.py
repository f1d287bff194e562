"""The instructor's reports on a graded batch (the similarity report; the class report and the
graph feedback join them here)."""
