"""The command line: parses arguments and hands them to the module that does the work.

Exit codes: 0 done; 1 a fault of the kit itself, or for `check` a failing check and for
`build --check` a stale handout; 2 bad usage or bad input.
"""
import argparse
import sys

DESCRIPTION = """\
autodiff101: a course kit for teaching reverse-mode autodiff the micrograd way. It makes the
student handout from the reference solution, checks students' work, and grades submissions
in a sandbox, explaining every lost point in terms of the chain rule."""

EPILOG = """\
examples:
  autodiff101 grade                             grade the bundled examples, print the gradebook
  autodiff101 grade submissions/ -o grades      grade a folder of .py, .ipynb, .zip or folders
  autodiff101 report grades                     the class report: grades/report.html
  autodiff101 release -o handout                the handout for students: handout/ and handout.zip

Run `autodiff101 COMMAND --help` for a command's options.
exit status: 0 done; 1 failing checks (check), a stale handout (build --check) or a fault
of the kit; 2 bad usage or input; 3 graded, but the grader failed on some submissions (their
rows say grader-fault; a rerun grades only them)."""


SEED_HELP = "seed of the hidden checks' inputs (default: the course's, from --config)"


def _version():
    from importlib import metadata

    try:
        return metadata.version("autodiff101")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """``--version``: looked up only when asked for (importlib.metadata is slow to import, and
    every other command, ``grade`` above all, would pay for it)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def main(argv=None):
    """Run the command line; returns the exit code."""
    from .selfcheck import closed_pipe_ok

    parser = build_parser()
    args = parser.parse_args(argv)
    with closed_pipe_ok():  # `autodiff101 ... | head`: the reader stopping early is fine
        try:
            return args.run(args)
        except ValueError as error:
            # A bad --config (or the kit's checks.toml), wherever a command reads it: one
            # line and exit 2. Only checks.py raises ConfigError, so if it was never
            # imported, this is some other ValueError.
            checks = sys.modules.get(f"{__package__}.checks")
            if checks is None or not isinstance(error, checks.ConfigError):
                raise
            print(f"autodiff101 {args.verb}: {error}", file=sys.stderr)
            return 2


def build_parser():
    parser = argparse.ArgumentParser(prog="autodiff101", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    grade = verbs.add_parser("grade", help="grade submissions in sandboxed workers (default: the bundled examples)")
    grade.add_argument("paths", nargs="*", metavar="PATH",
                       help="a submission (.py, .ipynb, .zip, folder) or a folder of submissions")
    grade.add_argument("-o", "--out", default="grades", metavar="OUT", help="where results go (default: grades)")
    grade.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                       help="submissions whose workers run at once (default: the number of cores); as many "
                            "more are diagnosed and written meanwhile")
    grade.add_argument("--force", action="store_true", help="regrade submissions already graded in OUT")
    grade.add_argument("--seed", type=int, default=None, help=SEED_HELP)
    grade.add_argument("--config", metavar="TOML", default=None, help="points and visibility per check")
    grade.add_argument("--isolation", default="auto",
                       choices=["auto", "bubblewrap", "unprivileged-user", "rlimits"],
                       help="worker isolation (default: the strongest this machine offers)")
    grade.add_argument("--canvas", metavar="ROSTER", default=None,
                       help="also write OUT/canvas.csv for this Canvas roster (a gradebook export)")
    grade.add_argument("--assignment", metavar="TITLE", default=None,
                       help="the Canvas column, e.g. 'Autodiff 101 (12345)' (with --canvas)")
    grade.add_argument("--roster-id-column", metavar="COLUMN", default="SIS Login ID",
                       help="the roster column that submission ids match (default: SIS Login ID)")
    grade.set_defaults(run=_grade)

    report = verbs.add_parser("report", help="write OUT/report.html, the class report of a graded batch")
    report.add_argument("out", metavar="OUT", help="a folder 'autodiff101 grade' wrote")
    report.set_defaults(run=_report)

    check = verbs.add_parser("check", help="run the public checks on your code (the self-check)")
    check.add_argument("path", nargs="?", default=None,
                       help="a .py file, a .ipynb notebook or a folder (default: the handout here)")
    check.add_argument("--zip", action="store_true",
                       help="after the check, write what a student hands in to submission.zip next to the work")
    check.add_argument("--zip-to", metavar="FILE.zip", default=None,
                       help="the same, to FILE.zip instead (a new file, or one `check --zip` wrote)")
    check.add_argument("--config", metavar="TOML", default=None,
                       help="the course's config: its [course] exercises choose the extensions checked "
                            "(default: the public_checks.json next to the work, else the kit's handout)")
    check.set_defaults(run=_check)

    release = verbs.add_parser("release", help="write the student handout as a folder and a zip, leak-scanned")
    release.add_argument("-o", "--output", metavar="DIR", required=True,
                         help="the folder to write (an earlier release there is replaced); DIR.zip too")
    release.add_argument("--config", metavar="TOML", default=None,
                         help="the course's config: its [course] exercises choose the extensions")
    release.set_defaults(run=_release)

    build = verbs.add_parser("build", help="regenerate the student handout assignments/ from solutions/")
    build.add_argument("--check", action="store_true", help="only say whether assignments/ is stale (exit 1)")
    build.add_argument("--config", metavar="TOML", default=None,
                       help="the course's config: its [course] exercises choose the extensions")
    build.set_defaults(run=_build)

    gradescope = verbs.add_parser("gradescope", help="write the Gradescope autograder zip")
    gradescope.add_argument("-o", "--output", metavar="ZIP", default="autograder.zip",
                            help="the zip to write (default: autograder.zip)")
    gradescope.add_argument("--seed", type=int, default=None, help=SEED_HELP)
    gradescope.add_argument("--config", metavar="TOML", default=None, help="points and visibility per check")
    gradescope.set_defaults(run=_gradescope)

    similarity = verbs.add_parser("similarity", help="write OUT/similarity.html: pairs of submissions whose own code is alike")
    similarity.add_argument("out", metavar="OUT", help="a folder 'autodiff101 grade' wrote")
    similarity.add_argument("paths", nargs="*", metavar="SUBMISSIONS", help="default: the paths OUT records")
    similarity.set_defaults(run=_similarity)

    prairielearn = verbs.add_parser("prairielearn", help="write a PrairieLearn externally graded question to DIR")
    prairielearn.add_argument("-o", "--output", metavar="DIR", required=True,
                              help="where to write questions/autodiff101/ and serverFilesCourse/autodiff101/ (copy both into the course)")
    prairielearn.add_argument("--seed", type=int, default=None, help=SEED_HELP)
    prairielearn.add_argument("--config", metavar="TOML", default=None, help="points and visibility per check")
    prairielearn.set_defaults(run=_prairielearn)

    export = verbs.add_parser("export", help="the assignment for nbgrader or otter-grader, and nbgrader's per-check grades")
    export.epilog = "Run `autodiff101 export TOOL --help` for a tool's options."
    tools = export.add_subparsers(dest="tool", required=True, metavar="TOOL")
    for name, about in (("nbgrader", "an nbgrader course folder"), ("otter", "an otter-grader master notebook")):
        tool = tools.add_parser(name, help=f"write {about} to DIR")
        tool.add_argument("-o", "--output", metavar="DIR", required=True,
                          help="the folder to write (new, empty, or an earlier export)")
        tool.add_argument("--seed", type=int, default=None, help=SEED_HELP)
        tool.add_argument("--config", metavar="TOML", default=None, help="points and visibility per check")
    tools.choices["otter"].add_argument("--requirement", metavar="SPEC", default=None,
                                        help="a pip requirement by which Gradescope installs the kit (default: a wheel of the kit built into DIR)")
    grades = tools.add_parser("nbgrader-grades", help="one column per check from an nbgrader gradebook")
    grades.add_argument("course", nargs="?", default=".", metavar="DIR", help="the course folder (default: here)")
    grades.add_argument("-o", "--output", metavar="CSV", default="-",
                        help="the CSV file to write (default: standard output)")
    export.set_defaults(run=_export)

    train = verbs.add_parser("train", help="train the reference MLP on the 3-sample set (or --task moons)")
    train.add_argument("--epochs", type=int, default=None, help="training steps (default: 50; moons: 100)")
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: 0.01); refused with --task moons, which follows the "
                            "handout's schedule learning_rate(step, steps)")
    train.add_argument("--seed", type=int, default=None, help="default: the documented seed")
    train.add_argument("--plot", metavar="PNG", help="write the loss curve here (moons: the decision boundary); "
                                                     "a folder: loss.png (moons: boundary.png) inside it")
    # the moons extension: micrograd's two-moons demo
    train.add_argument("--task", choices=["three-samples", "moons"], default="three-samples",
                       help="moons: MLP(2, [16, 16, 1]) on the two-moons data, plotting its decision boundary")
    train.set_defaults(run=_train)

    return parser


def _grade(args):
    from .grade import command

    if args.canvas and not args.assignment:
        print("autodiff101 grade: --canvas needs --assignment 'Title (canvas_id)'", file=sys.stderr)
        return 2
    status = command(args.paths, out=args.out, jobs=args.jobs, force=args.force, seed=args.seed,
                     config=args.config, isolation=args.isolation)
    if status in (0, 3) and args.canvas:  # 3: the other rows still upload; grader-fault rows are left out, named
        from .platforms.canvas import command as canvas

        status = canvas(args.out, args.canvas, args.assignment, args.roster_id_column) or status
    return status


def _gradescope(args):
    from .platforms.gradescope import command

    return command(args.output, seed=args.seed, config=args.config)


def _similarity(args):
    from .reports.similarity import command

    return command(args.out, args.paths)


def _prairielearn(args):
    from .platforms.prairielearn import command

    return command(args.output, seed=args.seed, config=args.config)


def _report(args):
    from .reports.classreport import command

    return command(args.out)


def _train(args):
    from .training import run_moons, run_training

    if args.task == "moons":
        if args.lr is not None:  # an ignored option would let the student believe it was used
            print("autodiff101 train: --lr does not apply to --task moons: its learning rate follows the "
                  "handout's schedule learning_rate(step, steps), from 1.0 down towards 0.1", file=sys.stderr)
            return 2
        return run_moons(args.epochs, args.seed, args.plot)
    return run_training(50 if args.epochs is None else args.epochs, 0.01 if args.lr is None else args.lr,
                        args.seed, args.plot)


def _build(args):
    from .handout import build

    return build(check=args.check, config=args.config)


def _check(args):
    from .selfcheck import main

    checks = None
    if args.config:  # the course's public checks, compiled as `release --config` would ship them
        from .handout import chosen_exercises, public_checks

        checks = public_checks(chosen_exercises(config=args.config))
    return main(([args.path] if args.path else []) + (["--zip"] if args.zip else [])
                + (["--zip-to", args.zip_to] if args.zip_to else []), checks=checks,
                unchecked_note=None if args.config else _unchecked_note)


def _unchecked_note(exercises):
    """What `check` says when the work has extension exercises its checks leave out."""
    names = ", ".join(exercises)
    listed = ", ".join(f'"{name}"' for name in exercises)
    return (f"note: not checked: {names} (the work has them, but the public checks here are for the "
            f"other exercises only). To check them too: autodiff101 check PATH --config COURSE.toml, "
            f"with exercises = [{listed}] in the config's [course] table.")


def _release(args):
    from .handout import release

    return release(args.output, config=args.config)


def _export(args):
    if args.tool == "nbgrader-grades":
        from .platforms.nbgrader import export_grades

        return export_grades(args.course, args.output)
    if args.tool == "nbgrader":
        from .platforms.nbgrader import export
    else:
        from .platforms.otter import export
    options = {"requirement": args.requirement} if args.tool == "otter" and args.requirement else {}
    return export(args.output, seed=args.seed, config=args.config, **options)


if __name__ == "__main__":
    sys.exit(main())
