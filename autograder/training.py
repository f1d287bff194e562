"""``autodiff101 train``: train the reference MLP on the 3-sample set and report each epoch."""
import math
import sys
import tempfile
from pathlib import Path

from solutions.train import DEFAULT_SEED, train


def run_training(epochs=50, lr=0.01, seed=None, plot=None):
    """Train MLP(3, [3, 3, 1]) from ``seed`` (None: the documented seed); return an exit code.

    Prints ``Epoch N: Loss L`` for every epoch (the loss before that epoch's update), with a
    progress bar on top when stdout is a terminal, and writes the loss curve to ``plot``
    when given. Bad arguments are reported on stderr and return 2.
    """
    problem = _argument_problem(epochs, lr)
    if problem:
        print(f"autodiff101 train: {problem}", file=sys.stderr)
        return 2
    if plot:  # said before training, not after
        plot, code = _plot_target(plot)
        if code:
            return code
    seed = DEFAULT_SEED if seed is None else seed

    def report(epoch, loss):
        print(f"Epoch {epoch}: Loss {loss:.4f}")

    if sys.stdout.isatty():
        history = _train_with_progress_bar(epochs, lr, seed, report)
    else:  # piped or captured: only the plain lines, no terminal control codes
        history = train(epochs, lr, seed, on_epoch=report)

    if plot:
        from solutions.viz import plot_losses

        try:
            plot_losses(history, plot)
        except (OSError, ValueError) as error:  # unwritable path, unknown image format
            print(f"autodiff101 train: could not write {plot}: {error}", file=sys.stderr)
            return 2
        print(f"Loss curve written to {plot}")
    return 0


def _argument_problem(epochs, lr):
    if epochs < 1:
        return f"--epochs must be at least 1, got {epochs}"
    if not (math.isfinite(lr) and lr > 0):
        return f"--lr must be a positive number, got {lr}"
    return None


def _plot_target(plot, name="loss.png"):
    """(the absolute path --plot will write, 0), or (None, exit code) after a message on
    stderr: 1 without matplotlib, 2 for a folder that does not exist or cannot be written
    to, or a suffix matplotlib does not write. A --plot that is an existing folder is
    written inside it, as ``name``. Checked before training, which takes long."""
    formats = _image_formats()
    if formats is None:
        print("autodiff101 train: --plot needs matplotlib; "
              "install it with: pip install 'autodiff101[viz]'", file=sys.stderr)
        return None, 1
    path = Path(plot).expanduser().absolute()
    if path.is_dir():  # a folder: the picture goes inside it, not beside it
        path = path / name
    if not path.suffix:  # matplotlib would add .png itself: name the file it writes
        path = path.with_name(path.name + ".png")
    if path.suffix[1:].lower() not in formats:
        print(f"autodiff101 train: --plot {plot}: {path.suffix} is not an image format matplotlib "
              f"writes; use one of {', '.join('.' + name for name in sorted(formats))}", file=sys.stderr)
        return None, 2
    folder = path.parent
    if not folder.is_dir():
        print(f"autodiff101 train: --plot {plot}: the folder {folder} does not exist", file=sys.stderr)
        return None, 2
    try:  # os.access says yes to root everywhere; a read-only mount says no only when tried
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".autodiff101-", suffix=path.suffix):
            pass
    except OSError as error:
        print(f"autodiff101 train: --plot {plot}: cannot write to the folder {folder} "
              f"({error.strerror or error})", file=sys.stderr)
        return None, 2
    if path.is_dir():
        print(f"autodiff101 train: --plot {plot}: {path} is a folder; name an image file", file=sys.stderr)
        return None, 2
    return path.resolve(), 0


def _image_formats():
    """The file extensions matplotlib can write ("png", "svg", ...), or None without matplotlib."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return None
    return set(FigureCanvasBase.get_supported_filetypes())


def _train_with_progress_bar(epochs, lr, seed, report):
    from rich.progress import Progress

    # transient: the bar disappears at the end and leaves only the epoch lines behind;
    # print() inside it goes above the bar (rich redirects stdout while it is live).
    with Progress(transient=True) as progress:
        task = progress.add_task(f"training (seed {seed})", total=epochs)

        def on_epoch(epoch, loss):
            report(epoch, loss)
            progress.advance(task)

        return train(epochs, lr, seed, on_epoch=on_epoch)


# --- the moons extension: `autodiff101 train --task moons` -------------------------------------


def run_moons(steps=None, seed=None, plot=None):
    """micrograd's demo with the reference: MLP(2, [16, 16, 1]) from ``seed`` (None: the
    documented one) trained for ``steps`` (None: 100) full-batch steps on the 100 moons points;
    prints ``Step N: Loss L, accuracy A%`` and writes the decision boundary to ``plot``.
    Returns an exit code (2 for bad arguments, 1 when matplotlib is missing)."""
    from solutions.moons import MOONS_SEED, STEPS, load_moons, moons_model, train_moons

    steps = STEPS if steps is None else steps
    if steps < 1:
        print(f"autodiff101 train: --epochs must be at least 1, got {steps}", file=sys.stderr)
        return 2
    if plot:  # said before the 100 steps, not after
        plot, code = _plot_target(plot, "boundary.png")
        if code:
            return code
    xs, ys = load_moons()
    model = moons_model(MOONS_SEED if seed is None else seed)

    def report(step, loss, accuracy):
        print(f"Step {step}: Loss {loss:.4f}, accuracy {accuracy:.0%}")

    train_moons(model, xs, ys, steps, on_step=report)
    final = sum((model(x).data > 0) == (y > 0) for x, y in zip(xs, ys)) / len(ys)
    print(f"Training accuracy after {steps} steps: {final:.0%}")
    if plot:
        try:
            from solutions.viz import plot_boundary

            plot_boundary(model, xs, ys, plot)
        except ImportError as error:
            print(f"autodiff101 train: --plot needs matplotlib ({error}); "
                  "install it with: pip install 'autodiff101[viz]'", file=sys.stderr)
            return 1
        except (OSError, ValueError) as error:
            print(f"autodiff101 train: could not write {plot}: {error}", file=sys.stderr)
            return 2
        print(f"Decision boundary written to {plot}")
    return 0
