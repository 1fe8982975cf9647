"""The cookbook (`docs/cookbook.md`): every trick has a section, in order, and every snippet runs."""

import os
import re

import pytest

COOKBOOK = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "cookbook.md")
TEXT = open(COOKBOOK, encoding="utf-8").read()
# The tricks the cookbook must cover, in this order (issue 9).
TRICKS = [
    "Process your own data inside the model",
    "Tensors and tf.data",
    "Data augmentation",
    "Sampling the same data",
    "Intermediate checkpoints",
    "Virtual epochs",
    "Simple baselines",
    "Simplify the problem",
    "Train/eval mode",
    "Data shift",
    "Underfitting",
    "Overfitting",
    "Keyed predictions",
    "Inference mode",
    "Scaling cost",
    "Stateless serving",
    "Batching",
    "C++ serving with TF Serving",
]


def _sections():
    parts = re.split(r"^## (.+)$", TEXT, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


SECTIONS = _sections()
SNIPPETS = [
    (title, i, code)
    for title, body in SECTIONS.items()
    for i, code in enumerate(re.findall(r"```python\n(.*?)```", body, re.S))
]


def test_every_trick_has_a_section_in_order():
    assert list(SECTIONS) == TRICKS


@pytest.mark.parametrize("title", TRICKS)
def test_every_section_states_the_problem_shows_a_call_and_names_the_concept(title):
    body = SECTIONS.get(title, "")
    assert re.search(r"```(python|sh)\n", body), f"{title!r} has no snippet"
    assert "concept" in body.lower(), f"{title!r} does not name the Keras / TF Serving concept it rests on"
    problem = body.strip().split("\n\n")[0]
    assert len(re.findall(r"[.?!](\s|$)", problem)) >= 2, f"{title!r} does not open with the problem"


@pytest.mark.slow
@pytest.mark.parametrize("title,index,code", SNIPPETS, ids=[f"{t}-{i}" for t, i, _ in SNIPPETS])
def test_snippet_runs(title, index, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"cookbook.md ({title} #{index + 1})", "exec"), {"__name__": "cookbook"})
