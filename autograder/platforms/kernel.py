"""What a test cell of an exported notebook runs inside the kernel, where the kit is installed
(the grading side). ``assert_check`` lives in ``inprocess``, whose copy the exported
notebooks carry, so that students run the same test cells with nothing installed.
"""
from ..inprocess import FAILED, assert_check, failure_message

__all__ = ["FAILED", "assert_check", "failure_message"]
