"""A training job for the crash test: `python _resumable_job.py RUN_DIR SECONDS_PER_STEP`.

It paces its steps so that the test can kill it mid-run, and writes the
optimizer's step count to RUN_DIR/steps.txt when it finishes.
"""

import os
import sys
import time

import keras
from conftest import blobs, small_classifier

import recipes

run_dir, pause = sys.argv[1], float(sys.argv[2])


class Pace(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(pause)


recipes.set_seed(0)
model = small_classifier()
result = recipes.fit(
    model,
    blobs(300),
    validation_data=blobs(60, seed=1),
    batch_size=10,
    total_examples=10 * 8 * 6,  # 6 virtual epochs of 8 steps
    num_checkpoints=6,
    directory=os.path.join(run_dir, "checkpoints"),
    keep_best=2,
    callbacks=[Pace()],
    verbose=0,
)
with open(os.path.join(run_dir, "steps.txt"), "w") as f:
    f.write(f"{int(model.optimizer.iterations)} {len(result.history['loss'])}")
