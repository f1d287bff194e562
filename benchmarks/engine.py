"""Benchmark: the reference engine against micrograd 0.1.0 (pip install -e '.[bench]').

    python benchmarks/engine.py [--steps 20] [--chain-depth 1000000]

Trains MLP(2, [16, 16, 1]) on 100 two-moons points with three copies of one initialisation:
the reference (solutions.train.step, which pauses the cycle collector), micrograd written the
way its demo does (collector left on), and micrograd inside the same pause. One step of each
in turn, so all three see the same machine state; medians of per-step seconds are printed.
Then times backward() on a chain of additions --chain-depth deep.
"""
import argparse
import datetime
import math
import os
import platform
import random
import statistics
import time
from pathlib import Path

from micrograd.engine import Value as MicrogradValue
from micrograd.nn import MLP as MicrogradMLP

from solutions.engine import Value
from solutions.nn import MLP
from solutions.train import collector_paused, step

LEARNING_RATE = 0.001  # the loss is a sum over 100 points, so its gradients are large


def two_moons(count=100, noise=0.1, seed=0):
    """Two interleaved half circles with Gaussian noise, labelled +1 and -1."""
    rng = random.Random(seed)
    xs, ys = [], []
    for i in range(count):
        angle = math.pi * rng.random()
        if i % 2 == 0:
            x, y, label = math.cos(angle), math.sin(angle), 1.0
        else:
            x, y, label = 1 - math.cos(angle), 0.5 - math.sin(angle), -1.0
        xs.append([x + rng.gauss(0, noise), y + rng.gauss(0, noise)])
        ys.append(label)
    return xs, ys


def micrograd_step(model, lr, xs, ys):
    """One update as micrograd's demo loop writes it: forward, zero_grad, backward, update."""
    loss = sum((y - model(x)) ** 2 for x, y in zip(xs, ys))
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data


def micrograd_step_collector_paused(model, lr, xs, ys):
    with collector_paused():
        return micrograd_step(model, lr, xs, ys)


def same_initialisation(seed=0):
    """A reference MLP and two micrograd MLPs holding the same weights."""
    random.seed(seed)
    reference = MLP(2, [16, 16, 1])
    copies = [MicrogradMLP(2, [16, 16, 1]) for _ in range(2)]
    for copy in copies:
        for mine, theirs in zip(reference.parameters(), copy.parameters(), strict=True):
            theirs.data = mine.data
    return reference, *copies


def compare_training(steps):
    xs, ys = two_moons()
    reference, micrograd, micrograd_paused = same_initialisation()
    runs = {
        "reference (solutions.train.step)": lambda: step(reference, LEARNING_RATE, xs, ys),
        "micrograd 0.1.0, gc on (its demo)": lambda: micrograd_step(micrograd, LEARNING_RATE, xs, ys),
        "micrograd 0.1.0, gc paused like ours": lambda: micrograd_step_collector_paused(
            micrograd_paused, LEARNING_RATE, xs, ys),
    }
    seconds = {name: [] for name in runs}
    losses = {name: [] for name in runs}
    for _ in range(steps):
        for name, run in runs.items():
            start = time.perf_counter()
            losses[name].append(run())
            seconds[name].append(time.perf_counter() - start)
    return seconds, losses


def chain_backward_seconds(depth):
    """Build x + 1 + 1 + ... (depth additions) with the collector paused; time backward()."""
    with collector_paused():
        start = time.perf_counter()
        leaf = node = Value(0.0)
        for _ in range(depth):
            node = node + 1.0
        built = time.perf_counter()
        node.backward()
        finished = time.perf_counter()
        assert leaf.grad == 1.0 and node.data == depth
        del leaf, node
    return built - start, finished - built


def micrograd_recursion_depth_limit(depth=1000):
    node = MicrogradValue(0.0)
    for _ in range(depth):
        node = node + 1.0
    try:
        node.backward()
    except RecursionError:
        return f"RecursionError at depth {depth}"
    return f"no error at depth {depth}"


def describe_machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per engine")
    parser.add_argument("--chain-depth", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    print(f"Machine: {describe_machine()}")
    print(f"MLP(2, [16, 16, 1]) on 100 two-moons points, {args.steps} steps each, alternating:")
    print(f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; load average before "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    seconds, losses = compare_training(args.steps)
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    for name, times in seconds.items():
        print(f"  {name:38} min {min(times):.4f}, median {medians[name]:.4f} s/step")
    reference, gc_on, gc_paused = medians.values()
    print(f"  micrograd / reference: {gc_on / reference:.1f}x "
          f"(with the same gc pause: {gc_paused / reference:.1f}x)")
    reference_losses, *micrograd_losses = losses.values()
    drift = max(abs(a - b) / abs(a) for other in micrograd_losses for a, b in zip(reference_losses, other))
    print(f"  same arithmetic: losses {reference_losses[0]:.4f} -> {reference_losses[-1]:.4f} in all "
          f"three, largest relative difference {drift:.1e}")

    build, backward = chain_backward_seconds(args.chain_depth)
    print(f"Chain of {args.chain_depth:,} additions ({2 * args.chain_depth + 1:,} Values): "
          f"built in {build:.2f} s, backward() in {backward:.2f} s")
    print(f"micrograd 0.1.0 backward() on a chain: {micrograd_recursion_depth_limit()}")


if __name__ == "__main__":
    main()
