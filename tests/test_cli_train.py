"""`autodiff101 train`: epoch lines, the loss plot, bad arguments."""
import io
import re
import subprocess
import sys

import pytest

from autograder.cli import main
from autograder.training import run_training

EPOCH_LINE = re.compile(r"Epoch (\d+): Loss (\d+\.\d{4})")


def _epoch_lines(text):
    return [line for line in text.splitlines() if EPOCH_LINE.fullmatch(line)]


def test_python_m_autograder_train_prints_one_line_per_epoch():
    result = subprocess.run([sys.executable, "-m", "autograder", "train", "--epochs", "3"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == _epoch_lines(result.stdout)  # nothing else: not a terminal
    assert result.stdout.splitlines() == ["Epoch 0: Loss 0.9102", "Epoch 1: Loss 0.8775",
                                          "Epoch 2: Loss 0.8488"]


def test_seed_changes_the_run(capsys):
    assert main(["train", "--epochs", "1", "--seed", "3"]) == 0
    assert capsys.readouterr().out == "Epoch 0: Loss 1.0000\n"  # seed 3: every ReLU dead


def test_plot_writes_the_loss_curve_and_says_where(tmp_path, capsys):
    path = tmp_path / "loss.png"
    assert main(["train", "--epochs", "4", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert len(_epoch_lines(out)) == 4
    assert f"Loss curve written to {path}" in out
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("argv, complaint", [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--lr", "0"], "--lr must be a positive number"),
    (["--lr", "-0.5"], "--lr must be a positive number"),
    (["--lr", "nan"], "--lr must be a positive number"),
    (["--plot", "no/such/folder/loss.png"], "does not exist"),
])
def test_bad_arguments_exit_2_with_a_message(argv, complaint, capsys):
    assert main(["train", *argv]) == 2
    captured = capsys.readouterr()
    assert complaint in captured.err
    assert captured.out == ""  # refused before training


def test_unparsable_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochs", "many"])
    assert exit_info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_unknown_image_format_exits_2_before_training(tmp_path, capsys):
    assert run_training(epochs=50, lr=0.01, seed=None, plot=str(tmp_path / "loss.txt")) == 2
    captured = capsys.readouterr()
    assert ".txt is not an image format" in captured.err and ".png" in captured.err
    assert "Epoch" not in captured.out  # said before the 50 epochs, not after


def test_a_plot_name_without_extension_names_the_png_it_writes(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--epochs", "2", "--plot", "loss"]) == 0
    assert f"written to {(tmp_path / 'loss.png').resolve()}\n" in capsys.readouterr().out  # where, resolved
    assert (tmp_path / "loss.png").is_file() and not (tmp_path / "loss").exists()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_terminal_gets_a_progress_bar_and_the_same_epoch_lines(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("TERM", "xterm")
    for overrides_detection in ("TTY_COMPATIBLE", "TTY_INTERACTIVE", "FORCE_TERMINAL"):
        monkeypatch.delenv(overrides_detection, raising=False)
    assert run_training(epochs=3, lr=0.01, seed=None, plot=None) == 0
    text = terminal.getvalue()
    assert "\x1b[" in text  # rich drew (and cleared) its bar
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "\n")
    assert [EPOCH_LINE.fullmatch(line)[1] for line in _epoch_lines(plain)] == ["0", "1", "2"]


def test_moons_plot_says_the_absolute_path_it_wrote(tmp_path, monkeypatch, capsys):
    """A relative --plot is written in the current folder, and the line says where, resolved."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "moons", "--epochs", "1", "--plot", "pictures_boundary"]) == 0
    out = capsys.readouterr().out
    written = (tmp_path / "pictures_boundary.png").resolve()
    assert f"Decision boundary written to {written}\n" in out
    assert written.read_bytes().startswith(b"\x89PNG")


def _unwritable_folder():
    """A folder even root cannot create files in (sysfs), or None where there is none."""
    import tempfile
    from pathlib import Path

    folder = Path("/sys")
    try:
        tempfile.NamedTemporaryFile(dir=folder).close()
    except OSError:
        return folder
    return None


@pytest.mark.parametrize("task", ["moons", "three-samples"])
def test_a_plot_folder_that_is_missing_or_not_writable_is_refused_before_training(task, tmp_path, capsys):
    cases = [(tmp_path / "no" / "such" / "boundary.png", "does not exist")]
    if _unwritable_folder():
        cases.append((_unwritable_folder() / "boundary.png", "cannot write to the folder"))
    for path, complaint in cases:
        assert main(["train", "--task", task, "--epochs", "1", "--plot", str(path)]) == 2
        captured = capsys.readouterr()
        assert complaint in captured.err and str(path.parent) in captured.err
        assert "Traceback" not in captured.err
        assert captured.out == ""  # refused before training


@pytest.mark.parametrize("task, name, line", [("moons", "boundary.png", "Decision boundary written to"),
                                              ("three-samples", "loss.png", "Loss curve written to")])
def test_a_plot_that_is_an_existing_folder_is_written_inside_it(task, name, line, tmp_path, monkeypatch, capsys):
    """--plot pictures (a folder that exists) writes pictures/boundary.png (core: loss.png), not
    pictures.png beside it, and says that path."""
    pytest.importorskip("matplotlib")
    (tmp_path / "pictures").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", task, "--epochs", "1", "--plot", "pictures"]) == 0
    written = (tmp_path / "pictures" / name).resolve()
    assert f"{line} {written}\n" in capsys.readouterr().out
    assert written.read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "pictures.png").exists()


def test_lr_with_the_moons_is_refused_not_ignored(capsys):
    """The moons follow the handout's schedule: an --lr would be silently ignored, so it is refused."""
    assert main(["train", "--task", "moons", "--lr", "0.5", "--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert "--lr does not apply to --task moons" in captured.err and "learning_rate(step, steps)" in captured.err
    assert captured.out == ""


def test_the_help_says_lr_is_refused_with_the_moons(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "refused with --task moons" in " ".join(capsys.readouterr().out.split())
