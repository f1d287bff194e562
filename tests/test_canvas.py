"""canvas.csv: Canvas's gradebook import format, matched to a roster, nothing dropped silently."""
import csv
import io

import pytest

from autograder import examples, report
from autograder.platforms import canvas
from autograder.cli import main

ASSIGNMENT = "Autodiff 101 (12345)"
ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,Homework 1 (999)
    Points Possible,,,,,10
"Lovelace, Ada",101,S1,ada,Sec A,9
"Turing, Alan",102,S2,alan,Sec A,8
"Hopper, Grace",103,S3,grace,Sec B,
"""


def gradebook(folder, scores, statuses=None):
    """OUT/grades.csv as the grader writes it, for submissions {id: score} out of 100, with
    status "graded" unless ``statuses`` ({id: status}) says otherwise."""
    statuses = statuses or {}
    rows = [{"id": id, "score": score, "max_score": 100, "status": statuses.get(id, "graded"), "isolation": "rlimits",
             "by_check": {}} for id, score in scores.items()]
    folder.mkdir(parents=True, exist_ok=True)
    report.write_gradebook(folder, rows, [])
    return folder


def read(path):
    return list(csv.reader(io.StringIO(path.read_text())))


@pytest.fixture
def roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER)
    return path


def test_rows_follow_canvas_import_format(tmp_path, roster):
    out = gradebook(tmp_path / "out", {"ada": 100, "ALAN": 57.5, "grace": 0})
    result = canvas.export(out, roster, ASSIGNMENT)
    rows = read(out / "canvas.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ASSIGNMENT]
    assert rows[1] == ["Points Possible", "", "", "", "", "100"]
    assert rows[2:] == [["Lovelace, Ada", "101", "S1", "ada", "Sec A", "100"],
                        ["Turing, Alan", "102", "S2", "alan", "Sec A", "57.5"],
                        ["Hopper, Grace", "103", "S3", "grace", "Sec B", "0"]]
    assert result.matched == 3 and not result.unmatched_submissions and not result.unmatched_roster
    assert not (out / canvas.UNMATCHED).exists()


def test_unmatched_are_listed_on_both_sides(tmp_path, roster):
    out = gradebook(tmp_path / "out", {"ada": 90, "mallory": 100})
    result = canvas.export(out, roster, ASSIGNMENT)
    assert result.unmatched_submissions == ["mallory"]
    assert [s["SIS Login ID"] for s in result.unmatched_roster] == ["alan", "grace"]
    rows = read(out / "canvas.csv")
    assert [r[3] for r in rows[2:]] == ["ada", "alan", "grace"]  # every roster row kept
    assert [r[5] for r in rows[2:]] == ["90", "", ""]  # empty: Canvas leaves the grade alone
    listing = (out / canvas.UNMATCHED).read_text()
    assert "mallory" in listing and "alan\tTuring, Alan" in listing and "grace" in listing


def test_another_id_column_and_a_title_without_id_warns(tmp_path, roster):
    out = gradebook(tmp_path / "out", {"S2": 40})
    result = canvas.export(out, roster, "Autodiff 101", id_column="SIS User ID")
    assert result.matched == 1 and "create a new assignment" in result.warnings[0]
    assert read(out / "canvas.csv")[3][5] == "40"


def test_bad_rosters_are_refused_with_the_reason(tmp_path):
    out = gradebook(tmp_path / "out", {"ada": 1})
    no_login = tmp_path / "no-login.csv"
    no_login.write_text("Student,ID,SIS User ID,Section\nAda,1,S1,A\n")
    with pytest.raises(canvas.CanvasError, match="'SIS Login ID'"):
        canvas.export(out, no_login, ASSIGNMENT)
    twice = tmp_path / "twice.csv"
    twice.write_text("Student,ID,SIS User ID,SIS Login ID,Section\nAda,1,S1,ada,A\nAda2,2,S2,ADA,A\n")
    with pytest.raises(canvas.CanvasError, match="two roster rows"):
        canvas.export(out, twice, ASSIGNMENT)


def test_grade_command_writes_canvas_csv_from_real_grading(tmp_path, roster, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ada.py").write_text(examples.one_module())
    bug = examples.BUGS["add-assigns-grad"][1]
    (subs / "stranger.py").write_text(examples.patched(examples.one_module(), bug))
    out = tmp_path / "out"
    status = main(["grade", str(subs), "-o", str(out), "-j", "2", "--seed", "3",
                   "--canvas", str(roster), "--assignment", ASSIGNMENT])
    assert status == 0
    rows = read(out / "canvas.csv")
    assert rows[2][3:] == ["ada", "Sec A", "100"]
    printed = capsys.readouterr().out
    assert "stranger" in printed and "alan" in printed
    assert "stranger" in (out / canvas.UNMATCHED).read_text()


def test_grade_command_needs_the_assignment_title(tmp_path, roster):
    assert main(["grade", "-o", str(tmp_path / "out"), "--canvas", str(roster)]) == 2


def test_grader_fault_rows_are_left_out_and_named_not_uploaded_as_zero(tmp_path, roster):
    out = gradebook(tmp_path / "out", {"ada": 90, "alan": 0, "grace": 0},
                    statuses={"alan": "grader-fault", "grace": "timeout"})
    result = canvas.export(out, roster, ASSIGNMENT)
    rows = read(out / "canvas.csv")
    # Alan's row is absent: the import changes nothing for him. Grace's timeout is her work's 0.
    assert [r[3:] for r in rows[2:]] == [["ada", "Sec A", "90"], ["grace", "Sec B", "0"]]
    assert [(s["SIS Login ID"], sub, status) for s, sub, status in result.left_out] == [("alan", "alan", "grader-fault")]
    assert result.matched == 2 and not result.unmatched_roster  # Alan has a submission: not "unmatched"
    listing = (out / canvas.UNMATCHED).read_text()
    assert "left out of canvas.csv (1)" in listing and "alan\tTuring, Alan\talan\tgrader-fault" in listing


@pytest.mark.parametrize("status", ["load-error", "timeout", "crashed", "rejected"])
def test_a_submission_that_does_not_run_is_a_graded_zero(tmp_path, roster, status):
    out = gradebook(tmp_path / "out", {"ada": 0, "alan": 70, "grace": 55}, statuses={"ada": status})
    result = canvas.export(out, roster, ASSIGNMENT)
    assert read(out / "canvas.csv")[2][3:] == ["ada", "Sec A", "0"]
    assert not result.left_out and not (out / canvas.UNMATCHED).exists()


def test_an_unknown_status_is_left_out_like_a_grader_fault(tmp_path, roster):
    out = gradebook(tmp_path / "out", {"ada": 0, "alan": 70, "grace": 55}, statuses={"ada": "being-regraded"})
    result = canvas.export(out, roster, ASSIGNMENT)
    assert [r[3] for r in read(out / "canvas.csv")[2:]] == ["alan", "grace"]
    assert [status for _, _, status in result.left_out] == ["being-regraded"]


def test_command_warns_with_count_names_and_reason_for_left_out_students(tmp_path, roster):
    from rich.console import Console

    out = gradebook(tmp_path / "out", {"ada": 0, "alan": 0, "grace": 80},
                    statuses={"ada": "grader-fault", "alan": "grader-fault"})
    console = Console(record=True, width=400)
    assert canvas.command(out, roster, ASSIGNMENT, console=console) == 0
    printed = console.export_text()
    warning = next(line for line in printed.splitlines() if "left out" in line)
    assert warning.startswith("warning: 2 students left out of canvas.csv")
    assert "grader-fault" in warning and "rerun" in warning
    assert "ada (ada)" in warning and "alan (alan)" in warning
    assert [r[3] for r in read(out / "canvas.csv")[2:]] == ["grace"]


def test_grade_command_leaves_a_real_grader_fault_out_of_canvas_csv(tmp_path, roster, capsys, monkeypatch):
    """A grader fault made during a real batch: its student is named, not given a 0."""
    from autograder import grade

    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ada.py").write_text(examples.one_module())
    (subs / "alan.py").write_text(examples.one_module())
    real = grade.grade_submission

    def failing_on_alan(submission, *args, **kwargs):
        if submission.id == "alan":
            raise RuntimeError("a bug of the grader's")
        return real(submission, *args, **kwargs)

    monkeypatch.setattr(grade, "grade_submission", failing_on_alan)
    out = tmp_path / "out"
    status = main(["grade", str(subs), "-o", str(out), "-j", "1", "--seed", "3",
                   "--canvas", str(roster), "--assignment", ASSIGNMENT])
    assert status == 3  # the batch completed with a grader fault
    assert [r[3:] for r in read(out / "canvas.csv")[2:]] == [["ada", "Sec A", "100"], ["grace", "Sec B", ""]]
    printed = " ".join(capsys.readouterr().out.split())
    assert "1 student left out of canvas.csv" in printed and "alan (alan)" in printed
