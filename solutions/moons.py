"""Two interleaving half-moons, told apart by a max-margin classifier (micrograd's demo).

The data: 100 points (x1, x2) with labels -1 or +1, in ``moons.csv`` next to this file
(scikit-learn's ``make_moons(n_samples=100, noise=0.1, random_state=1337)``, written once).
The model: MLP(2, [16, 16, 1]), whose output is a score; its sign is the predicted label.
"""
import csv
import random
from pathlib import Path

from .nn import MLP
from .train import collector_paused

# Next to this module; in a notebook (no __file__), in the folder the notebook runs in.
MOONS_CSV = Path(__file__).with_name("moons.csv") if "__file__" in globals() else Path("moons.csv")
ALPHA = 1e-4  # the weight of the L2 penalty
MOONS_SEED = 1337  # the initial weights of the demo, which reach 100 % in 100 steps
STEPS = 100


def load_moons(path=MOONS_CSV):
    """The points as lists [x1, x2] and their labels (-1 or +1): (xs, ys), 100 of each."""
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    return [[float(row["x1"]), float(row["x2"])] for row in rows], [int(row["label"]) for row in rows]


def hinge_loss(scores, ys):
    """The max-margin loss: the mean over samples of max(0, 1 - y * score), as one Value.

    Write max(0, m) as m.relu(): Python's max() would compare a Value with 0, which Value
    does not support, and a loss built from .data would be a plain number with no gradient.
    A sample on the right side of the boundary by a margin of 1 or more costs nothing.
    ``scores``: the model's outputs (Values); ``ys``: labels, -1 or +1.
    """
    # max(0, m) is relu(m): the margins that are met pass no gradient.
    # BEGIN SOLUTION moons
    losses = [(1 - y * score).relu() for score, y in zip(scores, ys)]
    return sum(losses) * (1.0 / len(losses))
    # END SOLUTION


def l2_penalty(parameters, alpha=ALPHA):
    """alpha times the sum of the squares of the parameters, as one Value: it pulls the
    weights towards 0, so it must be built from the parameter Values themselves."""
    # BEGIN SOLUTION moons
    return alpha * sum(p * p for p in parameters)
    # END SOLUTION


def accuracy(scores, ys):
    """The fraction (0..1, a float) of samples whose score has the sign of their label."""
    # A score is a confidence, not a label: compare its sign with the label's.
    # BEGIN SOLUTION moons
    return sum((score.data > 0) == (y > 0) for score, y in zip(scores, ys)) / len(ys)
    # END SOLUTION


def moons_loss(model, xs, ys, alpha=ALPHA):
    """The training objective on (xs, ys): (hinge loss + L2 penalty of the model's
    parameters, as one Value; accuracy, a float)."""
    # The penalty regularises the model's parameters, not its scores or the data.
    # BEGIN SOLUTION moons
    scores = [model(x) for x in xs]
    total = hinge_loss(scores, ys) + l2_penalty(model.parameters(), alpha)
    return total, accuracy(scores, ys)
    # END SOLUTION


def learning_rate(step, steps):
    """The step size of update ``step`` (0-based) of ``steps``: exactly 1.0 - 0.9 * step / steps,
    1.0 at step 0 and falling in a straight line towards 0.1, for any number of steps.

    micrograd's demo writes it 1.0 - 0.9 * k / 100 because it runs 100 steps; use ``steps``,
    not 100, so that a shorter or longer run decays over its own length.
    """
    # BEGIN SOLUTION moons
    return 1.0 - 0.9 * step / steps
    # END SOLUTION


def train_moons(model, xs, ys, steps=STEPS, alpha=ALPHA, on_step=None):
    """Full-batch gradient descent on ``moons_loss``; returns [(loss, accuracy)] before
    each update. ``on_step(step, loss, accuracy)`` is called after each."""
    history = []
    for step in range(steps):
        with collector_paused():
            loss, acc = moons_loss(model, xs, ys, alpha)
            model.zero_grad()
            loss.backward()
            rate = learning_rate(step, steps)
            for p in model.parameters():
                p.data -= rate * p.grad
        history.append((loss.data, acc))
        if on_step is not None:
            on_step(step, loss.data, acc)
    return history


def moons_model(seed=MOONS_SEED):
    """MLP(2, [16, 16, 1]) with the weights ``seed`` draws (337 parameters)."""
    random.seed(seed)
    return MLP(2, [16, 16, 1])


if __name__ == "__main__":  # python moons.py: micrograd's demo with your code
    points, labels = load_moons()
    train_moons(moons_model(), points, labels,
                on_step=lambda step, loss, acc: print(f"Step {step}: Loss {loss:.4f}, accuracy {acc:.0%}"))
