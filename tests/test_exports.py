"""The exports' own logic, without nbgrader or otter installed: where each check's test
stands, what a test cell runs in the kernel, and the per-check reading of otter's results."""
import io
import json

import nbformat
import pytest

from autograder import cli, handout, notebook
from autograder.checks import compile_checks, reference_namespace
from autograder.platforms import export_source as source, kernel
from autograder.platforms import nbgrader as nbgrader_export
from autograder.platforms import otter as otter_export

COMPILED = compile_checks(seed=5)
BY_ID = {check["id"]: check for check in COMPILED}


@pytest.fixture(scope="module")
def parts():
    return source.parts(COMPILED, "### BEGIN SOLUTION", "### END SOLUTION")


def test_every_check_stands_in_exactly_one_tests_part(parts):
    placed = [check["id"] for part in parts if part.kind == "tests" for check in part.checks]
    assert sorted(placed) == sorted(BY_ID)


def test_a_check_that_calls_backward_waits_for_the_backward_exercise(parts):
    where = {check["id"]: part.exercise for part in parts if part.kind == "tests" for check in part.checks}
    assert where["add-step"] == "add"  # one _backward() step: runs right after the exercise
    assert where["add-same-node"] == "backward"  # a full backward(): runs once it exists
    assert where["nn-neuron-linear"] == "nn"
    assert where["training-converges"] is None and where["deep-chain"] is None  # the closing cell


def test_every_exercise_cell_has_its_region_closed(parts):
    solutions = {part.exercise: part.cell.source for part in parts if part.kind == "solution"}
    assert list(solutions) == handout.exercises(handout.reference_sources())
    for exercise, text in solutions.items():
        assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION") == 1, exercise
        lines = text.split("\n")
        begin = next(i for i, line in enumerate(lines) if "BEGIN SOLUTION" in line)
        end = next(i for i, line in enumerate(lines) if "END SOLUTION" in line)
        assert lines[begin][:lines[begin].index("#")] == lines[end][:lines[end].index("#")], exercise


def test_assert_check_passes_the_reference_silently(capsys):
    kernel.assert_check(reference_namespace(), json.dumps(BY_ID["add-same-node"]))
    assert capsys.readouterr() == ("", "")


def broken_add_namespace():
    namespace = dict(reference_namespace())

    class Value(namespace["Value"]):
        def __add__(self, other):
            print("debugging output", flush=True)
            import sys
            print("a warning of the student's", file=sys.stderr)
            return Value(0.0)

    namespace["Value"] = Value
    return namespace


def test_a_failed_check_raises_assertion_error_naming_it_and_writes_nothing_to_stderr(capsys):
    with pytest.raises(AssertionError) as failure:
        kernel.assert_check(broken_add_namespace(), BY_ID["value-operators"])
    assert str(failure.value).startswith("check value-operators failed: ")
    assert capsys.readouterr() == ("", "")


def test_a_hidden_check_says_what_went_wrong_but_not_its_inputs():
    public = dict(BY_ID["value-operators"])
    hidden = {**public, "visibility": "hidden"}
    with pytest.raises(AssertionError) as shown:
        kernel.assert_check(broken_add_namespace(), public)
    with pytest.raises(AssertionError) as kept_back:
        kernel.assert_check(broken_add_namespace(), hidden)
    assert len(str(kept_back.value)) < len(str(shown.value))
    assert str(shown.value).startswith(str(kept_back.value).split("\n")[0])


@pytest.mark.parametrize("check_id", ["add-step", "training-loss-history"])
def test_a_frozen_check_reads_back_as_the_same_data(check_id):
    assert json.loads(eval(source.frozen(BY_ID[check_id]))) == BY_ID[check_id]


def test_nbgrader_source_notebook_metadata():
    book = nbgrader_export.source_notebook(COMPILED)
    graded = [cell.metadata.nbgrader for cell in book.cells if cell.metadata.get("nbgrader", {}).get("grade")]
    assert len(graded) == len(COMPILED)
    assert sum(meta.points for meta in graded) == sum(check["points"] for check in COMPILED)
    assert all(meta.schema_version == 3 and meta.locked and not meta.solution for meta in graded)
    ids = [cell.metadata.nbgrader.grade_id for cell in book.cells if "nbgrader" in cell.metadata]
    assert len(ids) == len(set(ids))
    tagged = [cell for cell in book.cells if notebook.CHECK_TAG in cell.metadata.get("tags", [])]
    assert len(tagged) == len(COMPILED) + 1  # the test cells and the setup cell: autodiff101 grade skips them
    hidden = [cell.source for cell in book.cells if nbgrader_export.BEGIN_HIDDEN in cell.source]
    assert len(hidden) == sum(source.is_hidden(check) for check in COMPILED)
    assert not any("pow-cube-step" in meta.grade_id for meta in graded)


def test_source_cells_carry_nbgrader_metadata():
    compiled = [check for check in compile_checks(seed=0) if check["id"] == "add-step"]
    book = nbgrader_export.source_notebook(compiled)
    tests = [cell for cell in book.cells if cell.metadata.get("nbgrader", {}).get("grade")]
    assert [cell.metadata.nbgrader for cell in tests] == [{
        "grade": True, "grade_id": "check-add-step", "locked": True, "schema_version": 3,
        "solution": False, "task": False, "points": 4}]
    solutions = [cell for cell in book.cells if cell.metadata.get("nbgrader", {}).get("solution")]
    assert [cell.metadata.nbgrader.grade_id for cell in solutions] == [
        "exercise-add", "exercise-mul", "exercise-pow", "exercise-relu", "exercise-backward"]
    for cell in solutions:
        assert cell.source.count(nbgrader_export.BEGIN) == cell.source.count(nbgrader_export.END) == 1


def test_master_notebook_has_otter_v7_layout():
    compiled = [check for check in compile_checks(seed=0) if check["id"] in ("add-step", "pow-cube-step")]
    book, grouped = otter_export.master_notebook(compiled, "autodiff101==0.1.0")
    raws = [cell.source for cell in book.cells if cell.cell_type == "raw"]
    assert raws[0].startswith("# ASSIGNMENT CONFIG")
    assert "ok_format: false" in raws[0] and "pdf: false" in raws[0] and '- "autodiff101==0.1.0"' in raws[0]
    add = raws.index("# BEGIN QUESTION\nname: add")
    assert raws[add:add + 6] == ["# BEGIN QUESTION\nname: add", "# BEGIN SOLUTION", "# END SOLUTION",
                                 "# BEGIN TESTS", "# END TESTS", "# END QUESTION"]
    tests = {cell.source.split("def ")[1].split("(")[0]: cell.source for cell in book.cells
             if cell.cell_type == "code" and "# BEGIN TEST CONFIG" in cell.source}
    assert "hidden: false" in tests["test_add_step"] and "points: 4" in tests["test_add_step"]
    assert "hidden: true" in tests["test_pow_cube_step"]
    assert grouped == {"add": compiled[:1], "pow": compiled[1:]}


@pytest.mark.parametrize("tool", ["nbgrader", "otter"])
def test_the_kits_setup_cell_is_left_out_when_autodiff101_grades_the_notebook(tool):
    """The set-up cell carries the kit's checks (118 KB of the kit's code): it is not the
    student's, so the grader leaves it out in either tool's notebook, as it leaves out the
    handout's own check cells."""
    from autograder import load

    if tool == "nbgrader":
        book = nbgrader_export.source_notebook(COMPILED)
    else:
        book, _ = otter_export.master_notebook(COMPILED, "autodiff101==0.1.0")
    setup = source.kernel_setup_source()
    (index,) = [i for i, cell in enumerate(book.cells) if cell.cell_type == "code" and cell.source == setup]
    assert notebook.CHECK_TAG in book.cells[index].metadata["tags"]
    cells = load.notebook_code_cells(nbformat.writes(book))
    code = [cell.source for cell in book.cells if cell.cell_type == "code"]
    position = code.index(setup)
    assert cells[position] == "" and not any(setup in cell for cell in cells)
    assert any("def __add__" in cell for cell in cells)  # the student's own cells are kept


def test_otter_questions_hold_every_check_once():
    book, grouped = otter_export.master_notebook(COMPILED, "autodiff101==0.1.0")
    assert sorted(c["id"] for checks in grouped.values() for c in checks) == sorted(BY_ID)
    assert list(grouped) == ["add", "mul", "pow", "relu", "value", "backward", "sub-div", "nn", "training", "deep"]
    begins = [cell for cell in book.cells if cell.cell_type == "raw" and cell.source.startswith("# BEGIN QUESTION")]
    assert len(begins) == len(grouped)


def test_export_refuses_a_folder_that_is_not_an_earlier_export(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert nbgrader_export.export(tmp_path, seed=1, out=io.StringIO()) == 2
    assert otter_export.export(tmp_path, seed=1, out=io.StringIO()) == 2
    assert "not an earlier export" in capsys.readouterr().err


def test_cli_export_writes_the_course_folder(tmp_path, capsys):
    assert cli.main(["export", "nbgrader", "-o", str(tmp_path / "course"), "--seed", "3"]) == 0
    assert (tmp_path / "course" / "source" / "autodiff101" / "autodiff101.ipynb").is_file()
    config = (tmp_path / "course" / "nbgrader_config.py").read_text()
    assert "c.OverwriteCells.add_missing_cells = True" in config and "c.IgnorePattern.enabled = True" in config
    assert json.loads((tmp_path / "course" / nbgrader_export.MANIFEST).read_text())["seed"] == 3
    assert cli.main(["export", "otter", "-o", str(tmp_path / "otter"), "--requirement", "autodiff101 @ file:///kit"]) == 0
    config = nbformat.read(str(tmp_path / "otter" / "autodiff101.ipynb"), as_version=4).cells[0].source
    assert '  - "autodiff101 @ file:///kit"' in config.split("\n")
