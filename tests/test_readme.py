"""Every Python snippet in the README runs, so the documentation cannot drift from the code."""

import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
SNIPPETS = re.findall(r"```python\n(.*?)```", open(README).read(), re.S)


@pytest.mark.slow
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.splitlines()[-1][:40] for s in SNIPPETS])
def test_readme_snippet_runs(snippet, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 3
