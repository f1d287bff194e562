"""What the commands say and leave behind in the corners a new user finds: an empty batch, a
folder name with spaces, a single check, the seed of a build without --seed."""
import json
import shlex
import zipfile

import pytest

from autograder import checks, cli, selfcheck
from autograder.platforms import gradescope
from autograder.platforms import otter as otter_export


def test_report_on_an_empty_folder_exits_2_and_writes_nothing(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "run autodiff101 grade" in " ".join(capsys.readouterr().err.split())
    assert list(tmp_path.iterdir()) == []


def test_report_after_grading_an_empty_folder_does_not_ask_to_grade_first(tmp_path, capsys):
    (tmp_path / "submissions").mkdir()
    grades = tmp_path / "grades"
    assert cli.main(["grade", str(tmp_path / "submissions"), "-o", str(grades), "-j", "1"]) == 0
    capsys.readouterr()
    assert cli.main(["report", str(grades)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "lists no submissions" in err and "first" not in err
    assert not (grades / "report.html").exists()


def test_counts_of_checks_agree_in_number():
    assert selfcheck.passing(1, 1) == "1 of 1 check passes"
    assert selfcheck.passing(0, 1) == "0 of 1 check pass"
    assert selfcheck.passing(2, 3, "public check") == "2 of 3 public checks pass"


def test_the_exports_next_step_quotes_a_folder_with_spaces(tmp_path, capfd):
    out = tmp_path / "other dir (2)"
    assert cli.main(["export", "otter", "-o", str(out), "--requirement", "autodiff101"]) == 0
    next_line = [line for line in capfd.readouterr().out.splitlines() if line.startswith("next:")][0]
    assert f"cd {shlex.quote(str(out))} &&" in next_line
    assert shlex.split(next_line[len("next:"):])[1] == str(out)


def test_the_gradescope_zip_uses_the_course_seed_unless_told(tmp_path):
    def seed_of(archive):
        with zipfile.ZipFile(archive) as bundle:
            return json.loads(bundle.read(gradescope.SETTINGS))["seed"]

    assert seed_of(gradescope.build_zip(tmp_path / "a.zip")) == checks.course_seed()
    assert seed_of(gradescope.build_zip(tmp_path / "b.zip", seed=5)) == 5


def test_the_exports_use_the_course_seed_unless_told(tmp_path, capsys):
    assert cli.main(["export", "otter", "-o", str(tmp_path / "o"), "--requirement", "autodiff101"]) == 0
    manifest = json.loads((tmp_path / "o" / otter_export.MANIFEST).read_text())
    assert manifest["seed"] == checks.course_seed()


def test_every_prairielearn_option_has_help():
    parser = cli.build_parser()
    verbs = next(a for a in parser._actions if a.dest == "verb")
    assert all(action.help for action in verbs.choices["prairielearn"]._actions if action.option_strings)


def test_a_long_path_is_printed_on_one_line_in_a_log(tmp_path, capsys):
    """Output piped to a log is 80 columns wide to rich; a path split over two lines cannot be
    copied back into a shell. Each message that names a path keeps it whole."""
    deep = tmp_path / ("a-folder-name-long-enough-to-pass-eighty-columns-" * 2) / "grades"
    (tmp_path / "submissions").mkdir()
    config = tmp_path / ("course-settings-" * 6 + ".toml")
    config.write_text("[checks]\nno-such-check = { points = 1 }\n")
    assert cli.main(["grade", str(tmp_path / "submissions"), "-o", str(deep), "--config", str(config)]) == 2
    assert str(config) in capsys.readouterr().err
    assert cli.main(["grade", str(tmp_path / "submissions"), "-o", str(deep), "-j", "1"]) == 0
    assert f"gradebook {deep / 'grades.csv'}" in capsys.readouterr().out


# Every command that reads a course config says what is wrong with it in one line, exit 2.
BAD_EXERCISES = {"misspelt": ('exercises = ["tanh", "moon"]', "did you mean 'moons'"),
                 "capitalised": ('exercises = ["Tanh"]', "did you mean 'tanh'"),
                 "a string": ('exercises = "tanh"', "must be a list of exercise names")}
CONFIG_COMMANDS = {"build": ["build", "--check"], "release": ["release", "-o", "{out}"],
                   "grade": ["grade", "{out}-none", "-o", "{out}"], "gradescope": ["gradescope", "-o", "{out}.zip"],
                   "prairielearn": ["prairielearn", "-o", "{out}"], "export otter": ["export", "otter", "-o", "{out}"],
                   "export nbgrader": ["export", "nbgrader", "-o", "{out}"], "check": ["check", "{out}-none"]}


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
@pytest.mark.parametrize("mistake", BAD_EXERCISES)
def test_a_bad_exercises_list_is_one_line_and_exit_2_in_every_command_that_reads_the_config(
        command, mistake, tmp_path, capsys):
    line, said = BAD_EXERCISES[mistake]
    config = tmp_path / "course.toml"
    config.write_text(checks.DEFAULT_CONFIG.read_text().replace('# exercises = ["tanh", "exp", "log", "moons"]', line))
    out = tmp_path / "out"
    (tmp_path / "out-none").mkdir()
    argv = [part.replace("{out}", str(out)) for part in CONFIG_COMMANDS[command]] + ["--config", str(config)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and str(config) in err and "Traceback" not in err, err
    assert not (tmp_path / "out.zip").exists()
    if command != "grade":  # grade marks its output folder as its own (.autodiff101.json) first
        assert not (out.exists() and any(out.iterdir()))


def test_check_of_a_folder_with_extensions_says_which_it_left_out_and_checks_them_with_config(tmp_path, capsys):
    """A bare folder (no public_checks.json) whose Value has tanh, exp and log and which holds
    moons.py: without --config the kit's handout checks the core only, and check says what it
    left out and how to include it; with --config choosing them, they are checked."""
    from autograder import handout
    from exported import every_extension_config

    solved = handout.handout_files(chosen="all", solved=True)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("engine.py", "nn.py", "moons.py", "train.py", "moons.csv"):
        (work / name).write_text(solved[name])
    assert cli.main(["check", str(work)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "note: not checked: tanh, exp, log, moons" in out and "--config" in out
    assert cli.main(["check", str(work), "--config", str(every_extension_config(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "not checked" not in out and all(f" {name} " in out for name in ("tanh", "exp", "log", "moons")), out
