"""Check your work: `python check.py` (the .py files) or `python check.py autodiff101.ipynb`;
add `--zip` to also write submission.zip, the file you hand in."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the checker next to this file

from checker.selfcheck import main  # noqa: E402

if __name__ == "__main__":
    try:
        code = main(sys.argv[1:], default=Path(__file__).resolve().parent)
        sys.stdout.flush()
    except BrokenPipeError:  # `python check.py | head`: the reader stopped early, and that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    sys.exit(code)
