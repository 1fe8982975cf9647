"""`recipes doctor TASK` (or `--data PATH`): every debugging check on a baseline and its data, as one report.

Loads the task's data and factory as `recipes train` does (`recipes.cli.tasks`), runs `recipes.debug.doctor`
(overfit check, a training run and its diagnosis, train/eval mode, input, label and concept shift, error
analysis, explanations) with the column the task is split by (its split plan), and writes
`report.md` and `report.html` with the figures. The exit status is 1 when a check failed or raised, 0
otherwise (warnings included), 2 for bad usage.
"""

EXAMPLE = """example:
  recipes doctor tabular                     # Seattle weather: doctor/tabular/report.html
  recipes doctor audio --model lstm          # also compares espeak training voices with unseen flite voices
  recipes doctor text --total-examples 20000 --directory /tmp/doctor-text
  recipes doctor vision --json > doctor.json # the report's to_dict() as JSON; the progress on stderr
  recipes doctor --data reviews.csv --target sentiment --group movie      # your own data: doctor/reviews/
"""


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument
    from recipes.cli.tasks import add_task_arguments

    add_task_arguments(parser)
    parser.add_argument("--directory", help="report folder (default: doctor/TASK)")
    parser.add_argument(
        "--total-examples",
        type=int,
        help="examples shown in the training run (default: the task's passes of recipes train)",
    )
    parser.add_argument(
        "--num-checkpoints", type=int, default=5, help="virtual epochs of the training run (default: 5)"
    )
    parser.add_argument(
        "--target-score", type=float, help="score wanted, e.g. human-level accuracy (for the diagnosis)"
    )
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    add_json_argument(parser)


def task_data(args):
    """`(task, model_fn, train, validation)` for a checking command: the task of `args`, a factory of fresh
    models (`--model`) and its training and validation splits as arrays, as the checks take them."""
    from recipes.cli.tasks import check_model, task_from_args

    task = task_from_args(args, seed=args.seed)
    model = check_model(task, args.model)

    def model_fn():
        return task.build_model(model)

    return task, model_fn, task.arrays("train"), task.arrays("validation")


def run(args):
    from recipes.cli.checking import finish, report_output
    from recipes.cli.tasks import default_passes, describe
    from recipes.debug import doctor

    if args.total_examples is not None and args.total_examples < 1:
        raise ValueError(f"--total-examples must be >= 1. Received: {args.total_examples}")
    with report_output(args):
        task, model_fn, train, validation = task_data(args)
        total_examples = args.total_examples or max(
            int(default_passes(task) * len(train[1])), 32 * args.num_checkpoints
        )
        serving = task.arrays(task.extra_tests[0])[0] if task.extra_tests else None
        print(f"recipes doctor {task.name}: {describe(task)}", flush=True)
        column = task.split_plan.column  # the task's split: its column differs by design
        report = doctor(
            model_fn,
            train,
            validation,
            test_data=task.arrays("test"),
            serving_data=serving,
            directory=args.directory or f"doctor/{task.name}",
            modality=task.modality,
            class_names=None if task.class_names is None else list(task.class_names),
            split_column=column if isinstance(column, str) else None,
            target_score=args.target_score,
            total_examples=total_examples,
            num_checkpoints=args.num_checkpoints,
            seed=args.seed,
            verbose=1,
        )
    return finish(args, report)
