"""Check your work: `python check.py` (the .py files) or `python check.py autodiff101.ipynb`;
add `--zip` to also write submission.zip, the file you hand in, next to your work."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the checker next to this file

from checker.selfcheck import closed_pipe_ok, main  # noqa: E402

if __name__ == "__main__":
    with closed_pipe_ok():  # `python check.py | head`: the reader stopping early is fine
        code = main(sys.argv[1:], default=Path(__file__).resolve().parent)
    sys.exit(code)
