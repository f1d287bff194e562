"""autodiff101's grading engine: a submission's path is load -> worker -> checks -> judge -> report."""
