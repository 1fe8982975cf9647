"""`recipes doctor TASK`: every debugging check on a baseline and its real data, as one report.

Loads the task's data and factory as `recipes train` does, runs `recipes.debug.doctor` (overfit check,
a training run and its diagnosis, train/eval mode, input, label and concept shift, error analysis,
explanations) with the column the task is split by (`recipes.tasks.shipped(TASK).split_plan`), and writes
`report.md` and `report.html` with the figures. The exit status is 1 when a check failed or raised, 0
otherwise (warnings included), 2 for bad usage.
"""

import argparse

EXAMPLE = """example:
  recipes doctor tabular                     # Seattle weather: doctor/tabular/report.html
  recipes doctor audio --model lstm          # also compares espeak training voices with unseen flite voices
  recipes doctor text --total-examples 20000 --directory /tmp/doctor-text
  recipes doctor vision --json > doctor.json # the report's to_dict() as JSON; the progress on stderr
"""
# The modality of each task's data, as `shift_report` and `explain` name it.
MODALITY = {"text": "text", "audio": "audio", "vision": "image", "tabular": "table"}


def add_arguments(parser):
    from recipes.cli import train
    from recipes.cli.checking import add_json_argument

    parser.add_argument("task", choices=sorted(train.MODELS), help="which baseline")
    parser.add_argument(
        "--model", help="factory: " + "; ".join(f"{task}: {', '.join(kinds)}" for task, kinds in train.MODELS.items())
    )
    parser.add_argument("--directory", help="report folder (default: doctor/TASK)")
    parser.add_argument(
        "--total-examples", type=int, help="examples shown in the training run (default: the task's passes of recipes train)"
    )
    parser.add_argument("--num-checkpoints", type=int, default=5, help="virtual epochs of the training run (default: 5)")
    parser.add_argument("--target", type=float, help="score wanted, e.g. human-level accuracy (for the diagnosis)")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    add_json_argument(parser)


def task_data(task, model=None, seed=0):
    """`(model_fn, split, description, class_names)` for one of `recipes train`'s tasks.

    `model_fn()` builds a fresh model each call, as the checks need; the data is loaded once.
    """
    import recipes
    from recipes.cli import train

    model = model or train.MODELS[task][0]
    if model not in train.MODELS[task]:
        raise ValueError(f"--model for {task} must be one of {train.MODELS[task]}. Received: {model!r}")
    args = argparse.Namespace(task=task, model=model, seed=seed)
    first, split, how = train.TASKS[task](args, recipes)
    built = [first]

    def model_fn():
        if built:  # the model the task loader built is fresh: use it once before building more
            return built.pop()
        return train.TASKS[task](args, recipes)[0]

    class_names = getattr(first.layers[-1], "class_names", None)
    return model_fn, split, how, class_names


def run(args):
    from recipes.cli import train
    from recipes.cli.checking import finish, report_output
    from recipes.debug import doctor
    from recipes.tasks import shipped

    if args.total_examples is not None and args.total_examples < 1:
        raise ValueError(f"--total-examples must be >= 1. Received: {args.total_examples}")
    with report_output(args):
        model_fn, split, how, class_names = task_data(args.task, args.model, args.seed)
        total_examples = args.total_examples or max(
            int(train.DEFAULT_PASSES[args.task] * len(split.train[1])), 32 * args.num_checkpoints
        )
        serving = next(iter(split.extra_tests.values()))[0] if split.extra_tests else None
        plan = shipped(args.task, seed=args.seed).split_plan  # the task's split: its column differs by design
        print(f"recipes doctor {args.task}: {how}", flush=True)
        report = doctor(
            model_fn,
            split.train,
            split.validation,
            test_data=split.test,
            serving_data=serving,
            directory=args.directory or f"doctor/{args.task}",
            modality=MODALITY[args.task],
            class_names=class_names,
            split_column=plan.column if isinstance(plan.column, str) else None,
            target=args.target,
            total_examples=total_examples,
            num_checkpoints=args.num_checkpoints,
            seed=args.seed,
            verbose=1,
        )
    return finish(args, report)
