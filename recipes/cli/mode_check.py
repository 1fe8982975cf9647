"""`recipes mode-check TASK` (or `--data PATH`): does a baseline (or a trained `.keras` model) behave in training and inference mode?

Runs `recipes.debug.mode_check` on a batch of the task's validation inputs; exit status 1 on "fail" (2 for
bad usage).
"""

EXAMPLE = """example:
  recipes mode-check vision                                  # the Fashion-MNIST CNN with its augmentation
  recipes mode-check text --model-path runs/text/epoch-005.keras
  recipes mode-check tabular --json                          # the report's to_dict() as JSON on stdout
  recipes mode-check --data weather.csv --target sky         # your own table
"""


def add_arguments(parser):
    from recipes.cli.checking import add_json_argument
    from recipes.cli.tasks import add_task_arguments

    add_task_arguments(parser)
    parser.add_argument("--model-path", help="check this trained .keras model instead of a fresh one")
    parser.add_argument("--num-examples", type=int, default=64, help="validation rows in the batch, default: 64")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    add_json_argument(parser)


def run(args):
    from recipes._common import take_rows
    from recipes.cli.checking import finish, report_output
    from recipes.cli.doctor import task_data
    from recipes.cli.explain import load_model
    from recipes.debug import mode_check

    if args.num_examples < 1:
        raise ValueError(f"--num-examples must be >= 1. Received: {args.num_examples}")
    with report_output(args):
        model = load_model(args.model_path) if args.model_path else None
        _, model_fn, _, (x, _) = task_data(args)
        report = mode_check(model or model_fn(), take_rows(x, slice(0, args.num_examples)))
    return finish(args, report)
