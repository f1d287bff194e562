"""Check your work: `python check.py` (the .py files) or `python check.py autodiff101.ipynb`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the checker next to this file

from checker.selfcheck import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], default=Path(__file__).resolve().parent))
