"""Tasks: a data set with the role of each column, its split, its factory and its metric, as one object.

Every recipe and command that trains can take a `Task`: one built from the
user's files with `Task.from_path` (CSV, JSON Lines or Parquet tables;
folders of class folders of images, WAV clips or text files), from memory
with `Task.from_frame` or `Task.from_arrays`, or a shipped data set with
`shipped("text")`, `"audio"`, `"vision"` or `"tabular"`.

Example:

```python
import recipes
from recipes.tasks import Task

task = Task.from_path("reviews.csv", target="sentiment", group="movie")
print(task)                                  # roles, types, split sizes, factories, metric
model = task.build_model()
recipes.fit(model, task.train_data, validation_data=task.validation_data, batch_size=32,
            total_examples=10 * task.num_examples["train"], num_checkpoints=5)
task.score(model), task.baseline()
```
"""

from recipes.tasks.checks import MODALITIES, PROBLEMS
from recipes.tasks.columns import KINDS as COLUMN_TYPES
from recipes.tasks.packaged import SHIPPED, shipped
from recipes.tasks.splitting import SPLITS
from recipes.tasks.task import MODELS, Task

__all__ = ["COLUMN_TYPES", "MODALITIES", "MODELS", "PROBLEMS", "SHIPPED", "SPLITS", "Task", "shipped"]
