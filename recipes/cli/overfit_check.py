"""`recipes overfit-check TASK` (or `--data PATH`): can a fresh baseline learn a small sample of its data by heart?

Runs `recipes.debug.overfit_check` on a task named as `recipes train` names it and prints the verdict with the causes
found and the checklist; the exit status is 1 on "fail", so a CI job can gate on it (2 for bad usage).
"""

EXAMPLE = """example:
  recipes overfit-check vision                       # Fashion-MNIST CNN, 10 classes x 100 rows
  recipes overfit-check text --per-class 50 --output overfit.png
  recipes overfit-check tabular --model regressor    # R^2 on the sample instead of accuracy
  recipes overfit-check tabular --json               # the report's to_dict() as JSON on stdout
  recipes overfit-check --data photos/ --model linear --per-class 20      # your own folder of class folders
"""


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument
    from recipes.cli.tasks import add_task_arguments

    add_task_arguments(parser)
    parser.add_argument("--per-class", type=int, default=100, help="rows per class (or target bin), default: 100")
    parser.add_argument("--target-score", type=float, default=0.9, help="accuracy (or R^2) to reach, default: 0.9")
    parser.add_argument(
        "--total-examples",
        type=int,
        help="examples to train on at most (default: one pass over the sample per checkpoint)",
    )
    parser.add_argument("--num-checkpoints", type=int, default=50, help="virtual epochs, each measured (default: 50)")
    parser.add_argument("--output", help="write the curve to this PNG file")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    add_json_argument(parser)


def run(args):
    import numpy as np

    from recipes.cli.checking import finish, report_output
    from recipes.cli.doctor import task_data
    from recipes.debug import overfit_check

    with report_output(args):
        task, model_fn, (x, y), _ = task_data(args)
        classifier = task.problem == "classification"
        report = overfit_check(
            model_fn,
            (x, y),
            num_classes=min(10, len(np.unique(y))) if classifier else 10,
            per_class=args.per_class,
            target_score=args.target_score,
            total_examples=args.total_examples,
            num_checkpoints=args.num_checkpoints,
            seed=args.seed,
            task=task.problem,
        )
        text = str(report)
        if args.output:
            text += f"\ncurve written to {report.plot(args.output)}"
    return finish(args, report, text)
