"""`lake train` and `lake score`: the trip-duration model and its batch inference."""

from __future__ import annotations

import argparse
import json

from cli.main import open_lake


def _train(args: argparse.Namespace) -> int:
    from pipelines.train import run_train  # imports MLflow: slow, so only when the command runs
    from pipelines.train.evaluate import train_markdown

    result = run_train(open_lake(args), promote=args.promote, reproduce_run_id=args.reproduce, tune=args.tune)
    print(train_markdown(result))
    print(json.dumps(result.details, indent=2, default=str))
    return 0


def _score(args: argparse.Namespace) -> int:
    from pipelines.score import run_score  # imports MLflow: slow, so only when the command runs

    result = run_score(open_lake(args), rescore=args.rescore)
    print(result.summary_markdown())
    print(json.dumps(result.details, indent=2, default=str))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser(
        "train", help="train the trip-duration model on gold.trip_features and log it to MLflow"
    )
    train.add_argument(
        "--promote",
        action="store_true",
        help="move the 'champion' alias to the new version if its recipe is at least as good as the champion's "
        "(mean test RMSE, refitted on the same windows)",
    )
    train.add_argument(
        "--tune",
        action="store_true",
        help="pick the regressor parameters from the tuning grid in conf/model.yaml on a time-ordered validation "
        "window first (each candidate a nested MLflow run)",
    )
    train.add_argument(
        "--reproduce",
        metavar="RUN_ID",
        default=None,
        help="retrain from the Delta versions, parameters and split recorded in MLflow run RUN_ID and compare metrics",
    )
    train.set_defaults(handler=_train)
    score = subparsers.add_parser(
        "score", help="predict durations of trips added since the last scoring run, with the champion model"
    )
    score.add_argument("--rescore", action="store_true", help="re-predict every trip with the current champion")
    score.set_defaults(handler=_score)
