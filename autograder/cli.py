"""The command line: parses arguments and hands them to the module that does the work.

Exit codes: 0 done, 1 a fault of the kit itself, 2 bad usage or bad input.
"""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="autodiff101", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    train = verbs.add_parser("train", help="train the reference MLP on the 3-sample set")
    train.add_argument("--epochs", type=int, default=50)
    train.add_argument("--lr", type=float, default=0.01)
    train.add_argument("--seed", type=int, default=None, help="default: the documented seed")
    train.add_argument("--plot", metavar="PNG", help="write the loss curve here")
    train.set_defaults(run=_train)

    args = parser.parse_args(argv)
    return args.run(args)


def _train(args):
    from .training import run_training

    return run_training(args.epochs, args.lr, args.seed, args.plot)


if __name__ == "__main__":
    sys.exit(main())
