"""`markdown_table`: a `pandas.DataFrame` as a GitHub Markdown table, for the reports' `to_markdown`.

Written here rather than with `DataFrame.to_markdown`: that needs the `tabulate` package, which also leaves
`|` and line breaks inside cells as they are, so a review or a file name containing them breaks the table.
"""

import numpy as np


def markdown_table(frame, digits=4):
    """Returns `frame` (without its index) as Markdown: floats to `digits` significant digits, `|` escaped."""

    def cell(value):
        if isinstance(value, (float, np.floating)):
            value = f"{value:.{digits}g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
