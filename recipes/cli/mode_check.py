"""`recipes mode-check TASK`: does a baseline (or a saved `.keras` model) behave in training and inference mode?

Runs `recipes.debug.mode_check` on a batch of the task's validation inputs; exit status 1 on FAIL.
"""

EXAMPLE = """example:
  recipes mode-check vision                                  # the Fashion-MNIST CNN with its augmentation
  recipes mode-check text --keras-file runs/text/epoch-005.keras
"""


def add_arguments(parser):
    from recipes.cli import train

    parser.add_argument("task", choices=sorted(train.MODELS), help="which baseline's data (and factory)")
    parser.add_argument("--model", help="factory, as for `recipes train` (default: the task's first)")
    parser.add_argument("--keras-file", help="check this saved .keras model instead of a fresh one")
    parser.add_argument("--rows", type=int, default=64, help="validation rows in the sample, default: 64")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")


def run(args):
    from recipes.cli.doctor import task_data
    from recipes.debug import mode_check
    from recipes.debug.overfit import _rows

    model_fn, split, how, _ = task_data(args.task, args.model, args.seed)
    if args.keras_file:
        import keras

        import recipes.layers  # noqa: F401  registers the custom layers the factories use, for loading
        from models import audio, text, vision  # noqa: F401

        model = keras.saving.load_model(args.keras_file)
    else:
        model = model_fn()
    report = mode_check(model, _rows(split.validation[0], slice(0, args.rows)))
    print(report)
    return 0 if report.verdict == "PASS" else 1
