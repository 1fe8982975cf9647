"""`recipes demo`: the main job, end to end on real data.

Splits Rotten Tomatoes by movie (repeatably), trains the bag-of-words
baseline with virtual epochs, best-K checkpoints and early stopping, then
compares its test accuracy with always predicting the majority class.
"""

import os
import shutil

EXAMPLE = """example:
  recipes demo                       # a fresh run in runs/demo
  recipes demo --resume              # continue an interrupted run (Ctrl-C it, then resume)
  recipes demo --passes 3 --num-checkpoints 3
"""


def add_arguments(parser):
    parser.add_argument("--run-dir", default="runs/demo", help="checkpoints folder (default: runs/demo)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --run-dir instead of starting over"
    )
    parser.add_argument(
        "--passes", type=float, default=10.0,
        help="examples to show, in passes over today's training split (default: 10)",
    )  # fmt: skip
    parser.add_argument("--num-checkpoints", type=int, default=10, help="virtual epochs (default: 10)")
    parser.add_argument("--batch-size", type=int, default=32, help="default: 32")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")


def run(args):
    import numpy as np

    import recipes
    from models import text

    if not args.resume and os.path.isdir(args.run_dir):
        shutil.rmtree(args.run_dir)  # the demo's own scratch folder: a fresh run each time
    recipes.set_seed(args.seed)
    reviews = recipes.datasets.load_rotten_tomatoes()
    train, val, test = recipes.repeatable_split(reviews.movie_name, (0.8, 0.1, 0.1))
    print(
        f"Rotten Tomatoes: {len(reviews)} reviews of {reviews.movie_name.nunique()} movies; "
        f"split by movie into {len(train)} train / {len(val)} validation / {len(test)} test"
    )

    def xy(rows):
        return reviews.text.to_numpy()[rows], reviews.label.to_numpy()[rows]

    total_examples = int(args.passes * len(train))
    steps = recipes.virtual_steps_per_epoch(total_examples, args.batch_size, args.num_checkpoints)
    print(
        f"Virtual epochs: {total_examples} examples / ({args.batch_size} per batch x "
        f"{args.num_checkpoints} checkpoints) = {steps} steps per epoch"
    )
    model = text.bag_of_words_classifier(xy(train)[0], num_classes=2)
    result = recipes.fit(
        model,
        xy(train),
        validation_data=xy(val),
        batch_size=args.batch_size,
        total_examples=total_examples,
        num_checkpoints=args.num_checkpoints,
        checkpoint_dir=args.run_dir,
        monitor="val_loss",
        early_stopping_patience=3,
        resume=True,
        verbose=2,
    )
    if result.stopped_early:
        print(f"Early stopping after {len(result.history['loss'])} virtual epochs; best weights restored")
    print("Kept checkpoints (best first):")
    for path in result.best_checkpoints:
        print(f"  {path}")
    print(f"  last: {result.last_checkpoint}")

    x_test, y_test = xy(test)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    majority = np.bincount(xy(train)[1]).argmax()
    baseline = float(np.mean(y_test == majority))
    print(
        f"Test accuracy: {accuracy:.3f} vs {baseline:.3f} for always predicting the majority "
        f"class ({recipes.datasets.ROTTEN_TOMATOES_CLASSES[majority]}): "
        f"{accuracy - baseline:+.3f}"
    )
