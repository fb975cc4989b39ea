"""tools/pipeline.py: per-stage staleness by content hash, on a fake repository with fake stage modules.

The fake repository has the real layout (``pyproject.toml``, ``notebooks/NN_*.ipynb``, ``src/glass_sm/...``) but
tiny modules: each stage module imports a little of the fake package and declares the parameter sections it reads.
Stages are "run" by writing the executed notebook and the stamp as :func:`pipeline.run_stage` does; one test runs
real (trivial) notebooks through papermill.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

import pipeline
from glass_sm import config

# stage module -> (source, ) of the fake package; 06 alone reaches figures/captions.py
FAKE_PACKAGE = {
    "__init__.py": '"""fake glass_sm."""\n',
    "config.py": "X = 1\n",
    "paths.py": "from glass_sm import config\n",
    "grid.py": "import numpy\n",
    "stages/__init__.py": "from glass_sm import config, paths\n",
    "data/__init__.py": "",
    "data/cube.py": "from ..grid import numpy\n",
    "evaluation/__init__.py": "",
    "evaluation/metrics.py": "import math\n",
    "figures/__init__.py": '"""figures: no eager imports."""\n',
    "figures/style.py": "from . import __name__ as _n\n",
    "figures/captions.py": 'CAPTION = "Figure 1: soil moisture"\n',
    "figures/paper.py": "from glass_sm.figures import captions, style\n",
    "stages/s01_data.py": 'CONFIG_SECTIONS = ("run", "domain", "period", "twin", "data", "cube")\n'
                          "from glass_sm.data import cube\n",
    "stages/s02_models.py": 'CONFIG_SECTIONS = ("run", "samples", "models", "training")\n'
                            "from glass_sm.evaluation import metrics\n",
    "stages/s03_atlstm.py": 'CONFIG_SECTIONS = ("run", "samples", "models", "training", "atlstm")\n'
                            "def f():\n    from ..evaluation import metrics  # function-local: still counted\n",
    "stages/s04_production.py": 'CONFIG_SECTIONS = ("run", "production")\nimport glass_sm.grid\n',
    "stages/s05_validation.py": 'CONFIG_SECTIONS = ("run", "validation")\nfrom glass_sm import evaluation\n',
    "stages/s06_figures.py": 'CONFIG_SECTIONS = ("run", "figures")\nfrom glass_sm.figures import paper\n',
}
S = pipeline.STAGES


def _notebook(code: str = "x = 1", params: str = 'params_file = ""\noverrides = {}') -> str:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A stage"), cell, nbformat.v4.new_code_cell(code)]
    return nbformat.writes(nb) + "\n"


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'fake'\n")
    for rel, text in FAKE_PACKAGE.items():
        path = root / "src" / "glass_sm" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for stage in S:
        (root / "notebooks" / f"{stage}.ipynb").write_text(_notebook(f"stage = {stage!r}"))
    return root


@pytest.fixture
def params(tmp_path) -> Path:
    """A params file whose results folder is outside the repository (absolute)."""
    p = tmp_path / "elsewhere" / "run.yaml"
    p.parent.mkdir()
    p.write_text(f"run:\n  name: fake\n  results_dir: {tmp_path / 'out'}\n")
    return p


def _nb_dir(params: Path, repo: Path) -> Path:
    return pipeline.results_root(config.load(params), repo) / "notebooks"


def fake_run(stage: str, params: Path, repo: Path) -> None:
    """What a successful run_stage leaves: the executed notebook, then the stamp."""
    nb_dir = _nb_dir(params, repo)
    nb_dir.mkdir(parents=True, exist_ok=True)
    inputs = pipeline.stage_inputs(stage, config.load(params), repo)
    (nb_dir / f"{stage}.ipynb").write_text((repo / "notebooks" / f"{stage}.ipynb").read_text())
    pipeline.write_stamp(nb_dir, stage, inputs, params, 1.0)


def run_all(params: Path, repo: Path) -> None:
    for stage in S:
        fake_run(stage, params, repo)


def stale(params: Path, repo: Path, stages=None) -> list[str]:
    return pipeline.stale_stages(params, stages, repo=repo)


def edit_keeping_mtime(path: Path, text: str) -> None:
    """Change the content but keep the old modification time (as ``cp -p``, ``rsync -a`` or ``tar x`` do)."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))


# ----------------------------------------------------------------------------------------------------------
# Locating things
# ----------------------------------------------------------------------------------------------------------
def test_find_repo_searches_upwards(repo):
    deep = repo / "src" / "glass_sm" / "stages"
    assert pipeline.find_repo(deep) == repo
    assert pipeline.find_repo(repo / "notebooks" / "01_data_preparation.ipynb") == repo
    assert pipeline.find_repo() == Path(pipeline.__file__).resolve().parents[1]


def test_find_repo_fails_clearly_outside_a_repository(tmp_path):
    with pytest.raises(FileNotFoundError, match="pyproject.toml"):
        pipeline.find_repo(tmp_path)


def test_stage_names_and_prefixes_resolve_in_stage_order():
    assert pipeline.resolve_stages(["06", "01_data_preparation", "03_at"]) == [S[0], S[2], S[5]]
    assert pipeline.resolve_stages(None) is None


@pytest.mark.parametrize("bad, word", [("07", "unknown"), ("validation", "unknown"), ("0", "ambiguous"),
                                       ("", "unknown")])
def test_unknown_or_ambiguous_stage_is_an_error(bad, word):
    with pytest.raises(ValueError, match=f"{word} stage '{bad}'.*01_data_preparation"):
        pipeline.resolve_stages([bad])


def test_cli_unknown_stage_exits_2_naming_the_stages(params, capsys):
    assert pipeline._main([str(params), "--stages", "07"]) == 2
    err = capsys.readouterr().err
    assert "unknown stage '07'" in err and "05_validation" in err


def test_relative_results_dir_is_relative_to_the_repository(repo, tmp_path):
    p = tmp_path / "rel.yaml"
    p.write_text("run:\n  name: r\n  results_dir: some/results\n")
    assert pipeline.results_root(config.load(p), repo) == repo / "some" / "results" / "r"


# ----------------------------------------------------------------------------------------------------------
# Inputs: import closure, parameter sections, notebook digest
# ----------------------------------------------------------------------------------------------------------
def test_import_closure_follows_absolute_relative_and_local_imports(repo):
    src = repo / "src"
    closure = pipeline.import_closure(["glass_sm.stages.s03_atlstm"], src)
    assert list(closure) == ["glass_sm", "glass_sm.config", "glass_sm.evaluation", "glass_sm.evaluation.metrics",
                             "glass_sm.paths", "glass_sm.stages", "glass_sm.stages.s03_atlstm"]
    six = pipeline.import_closure(["glass_sm.stages.s06_figures"], src)
    assert {"glass_sm.figures", "glass_sm.figures.paper", "glass_sm.figures.captions",
            "glass_sm.figures.style"} <= set(six)
    assert "glass_sm.data.cube" not in six  # nothing imports it
    one = pipeline.import_closure(["glass_sm.stages.s01_data"], src)
    assert {"glass_sm.data", "glass_sm.data.cube", "glass_sm.grid"} <= set(one)  # `from ..grid import numpy`
    assert all(n == "glass_sm" or n.startswith("glass_sm.") for n in one)  # numpy, math: not followed


def test_notebook_imports_are_roots_too(repo):
    nb = repo / "notebooks" / "01_data_preparation.ipynb"
    nb.write_text(_notebook("%matplotlib inline\nfrom glass_sm.figures import paper\nimport numpy as np"))
    assert {"glass_sm.figures", "glass_sm.figures.paper", "numpy"} <= pipeline.notebook_imports(nb)
    modules = pipeline.stage_inputs(S[0], config.load(None), repo).modules
    assert "glass_sm/figures/captions.py" in modules


def test_config_sections_are_read_without_importing(repo, tmp_path):
    stages = repo / "src" / "glass_sm" / "stages"
    assert pipeline.config_sections(stages / "s05_validation.py") == ("run", "validation")
    assert pipeline.config_sections(repo / "src" / "glass_sm" / "grid.py") is None
    bad = tmp_path / "bad.py"
    bad.write_text('CONFIG_SECTIONS = ("run", "figure")\n')
    with pytest.raises(ValueError, match=r"unknown section\(s\) \['figure'\]"):
        pipeline.config_sections(bad)


def test_notebook_digest_ignores_outputs_and_ids_but_not_sources_or_tags(tmp_path):
    path = tmp_path / "a.ipynb"
    path.write_text(_notebook("print(1)"))
    base = pipeline.notebook_digest(path)
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[2].execution_count = 7
    nb.cells[2].id = "renamed"
    nb.metadata["widgets"] = {}
    nbformat.write(nb, path)
    assert pipeline.notebook_digest(path) == base
    nb.cells[2].source = "print(2)"
    nbformat.write(nb, path)
    assert pipeline.notebook_digest(path) != base
    nb.cells[2].source = "print(1)"
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, path)
    assert pipeline.notebook_digest(path) != base


def test_params_digest_of_a_section_changes_only_with_that_section(tmp_path):
    a, b = config.load(None), config.load(None, {"figures.dpi": 72})
    da, db = pipeline.params_digests(a, ["run", "figures"]), pipeline.params_digests(b, ["run", "figures"])
    assert da["run"] == db["run"] and da["figures"] != db["figures"]
    assert set(pipeline.params_digests(a)) == {f for f in config.to_dict(a) if f != "source_file"}


# ----------------------------------------------------------------------------------------------------------
# Staleness
# ----------------------------------------------------------------------------------------------------------
def test_fresh_run_everything_stale_then_nothing(repo, params):
    steps = pipeline.plan(params, repo=repo)
    assert [p.stage for p in steps if p.run] == list(S)
    assert "no executed notebook" in steps[0].reasons
    run_all(params, repo)
    assert stale(params, repo) == []


def test_editing_a_caption_reruns_only_stage_06(repo, params):
    run_all(params, repo)
    captions = repo / "src" / "glass_sm" / "figures" / "captions.py"
    captions.write_text('CAPTION = "Figure 1: surface soil moisture"\n')
    steps = pipeline.plan(params, repo=repo)
    assert [p.stage for p in steps if p.run] == [S[5]]
    assert steps[5].reasons == ("modules changed: glass_sm/figures/captions.py",)


def test_content_change_with_an_older_mtime_is_detected(repo, params):
    run_all(params, repo)
    edit_keeping_mtime(repo / "src" / "glass_sm" / "evaluation" / "metrics.py", "import math  # edited\n")
    assert stale(params, repo)[0] == S[1]  # 02 imports metrics (and 03, 05 too); 01 does not
    run_all(params, repo)
    edit_keeping_mtime(params, params.read_text() + "validation:\n  n_boot: 7\n")
    assert stale(params, repo) == [S[4], S[5]]  # 05 reads `validation`; 06 is downstream of it


def test_a_parameter_reruns_the_stages_that_read_its_section(repo, params):
    run_all(params, repo)
    params.write_text(params.read_text() + "figures:\n  dpi: 72\n")
    steps = pipeline.plan(params, repo=repo)
    assert [p.stage for p in steps if p.run] == [S[5]]
    assert steps[5].reasons == ("parameters changed: figures",)
    run_all(params, repo)
    params.write_text(params.read_text().replace("name: fake", "name: fake\n  seed: 3"))
    assert stale(params, repo) == list(S)  # every stage reads `run`


def test_touch_without_content_change_reruns_nothing(repo, params):
    run_all(params, repo)
    for path in [params, *(repo / "src").rglob("*.py"), *(repo / "notebooks").glob("*.ipynb")]:
        os.utime(path)
    assert stale(params, repo) == []


def test_notebook_edit_reruns_that_stage_and_the_later_ones(repo, params):
    run_all(params, repo)
    (repo / "notebooks" / f"{S[3]}.ipynb").write_text(_notebook("stage = 'edited'"))
    steps = pipeline.plan(params, repo=repo)
    assert [p.stage for p in steps if p.run] == list(S[3:])
    assert steps[3].reasons == ("notebook changed",)
    assert steps[4].reasons == (f"upstream stale: {S[3]}",)


def test_upstream_rerun_makes_later_stages_stale(repo, params):
    run_all(params, repo)
    fake_run(S[2], params, repo)  # stage 03 re-ran (e.g. --force): new stamp
    steps = pipeline.plan(params, repo=repo)
    assert [p.stage for p in steps if p.run] == list(S[3:])
    assert steps[3].reasons == (f"upstream re-ran since: {S[2]}",)


def test_requested_stages_only_and_force(repo, params):
    run_all(params, repo)
    (repo / "src" / "glass_sm" / "config.py").write_text("X = 2\n")  # every stage imports it
    assert stale(params, repo, ["06"]) == [S[5]]
    assert stale(params, repo, ["02", "03"]) == [S[1], S[2]]
    (repo / "src" / "glass_sm" / "config.py").write_text("X = 1\n")
    assert stale(params, repo) == []
    assert pipeline.stale_stages(params, ["04"], force=True, repo=repo) == [S[3]]


def test_missing_stamp_or_executed_notebook_is_stale(repo, params):
    run_all(params, repo)
    nb_dir = _nb_dir(params, repo)
    pipeline.stamp_path(nb_dir, S[4]).unlink()
    (nb_dir / f"{S[5]}.ipynb").unlink()
    steps = pipeline.plan(params, repo=repo)
    assert [p.stage for p in steps if p.run] == [S[4], S[5]]
    assert steps[4].reasons[0].startswith("no stamp")


def test_without_a_stage_module_the_whole_package_and_config_count(repo, params):
    (repo / "src" / "glass_sm" / "stages" / "s06_figures.py").unlink()
    inputs = pipeline.stage_inputs(S[5], config.load(params), repo)
    assert "glass_sm/data/cube.py" in inputs.modules and "every module" in inputs.note
    assert set(inputs.params) == {f for f in config.to_dict(config.load(params)) if f != "source_file"}


def test_stages_without_a_notebook_are_left_out(repo, params):
    (repo / "notebooks" / f"{S[5]}.ipynb").unlink()
    assert [p.stage for p in pipeline.plan(params, repo=repo)] == list(S[:5])
    with pytest.raises(FileNotFoundError, match="06_paper_figures"):
        pipeline.plan(params, ["06"], repo=repo)


# ----------------------------------------------------------------------------------------------------------
# Running real (trivial) notebooks through papermill
# ----------------------------------------------------------------------------------------------------------
def test_run_executes_stale_stages_stamps_them_and_cleans_failures(repo, params, tmp_path):
    for stage in S[2:]:
        (repo / "notebooks" / f"{stage}.ipynb").unlink()
    (repo / "notebooks" / f"{S[1]}.ipynb").write_text(_notebook("raise RuntimeError('broken stage')"))
    messages: list[str] = []
    with pytest.raises(Exception, match="broken stage"):
        pipeline.run(params, repo=repo, log=messages.append)
    nb_dir = _nb_dir(params, repo)
    assert not str(nb_dir).startswith(str(repo))  # results outside the repository
    assert (nb_dir / f"{S[0]}.ipynb").is_file() and pipeline.read_stamp(nb_dir, S[0]) is not None
    assert (nb_dir / f"{S[1]}.failed.ipynb").is_file() and pipeline.read_stamp(nb_dir, S[1]) is None
    assert any("FAILED" in m for m in messages)

    (repo / "notebooks" / f"{S[1]}.ipynb").write_text(_notebook("y = 2"))
    assert pipeline.run(params, repo=repo, log=messages.append) == [S[1]]
    assert not (nb_dir / f"{S[1]}.failed.ipynb").exists()  # the stale failure is gone
    stamp = pipeline.read_stamp(nb_dir, S[1])
    assert stamp["upstream"] == {S[0]: pipeline.stamp_digest(nb_dir, S[0])}
    executed = nbformat.read(nb_dir / f"{S[1]}.ipynb", as_version=4)
    # injected relative to the repository (the notebooks' working directory), where it is found
    assert executed.metadata["papermill"]["parameters"]["params_file"] == "../elsewhere/run.yaml"
    assert 'params_file = "../elsewhere/run.yaml"' in executed.cells[2].source  # the injected cell
    assert pipeline.run(params, repo=repo, log=messages.append) == []
    assert messages[-1] == "pipeline: every stage is up to date"
    assert any(str(nb_dir / f"{S[1]}.ipynb") in m for m in messages)


def test_dry_run_says_why_and_runs_nothing(repo, params):
    messages: list[str] = []
    assert pipeline.run(params, ["01"], repo=repo, dry_run=True, log=messages.append) == [S[0]]
    assert messages[0].startswith(f"pipeline: {S[0]}: would run: no executed notebook")
    assert messages[1].startswith(f"pipeline: {S[1]}: stale, not requested")
    assert not _nb_dir(params, repo).exists()


def test_copied_repository_keeps_its_stamps_valid(repo, params, tmp_path):
    """Stamps hold content digests and no absolute source paths: a copy of the repository is up to date."""
    run_all(params, repo)
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    assert stale(params, copy) == []
    stamp = json.loads(pipeline.stamp_path(_nb_dir(params, repo), S[5]).read_text())
    assert all(not k.startswith("/") for k in stamp["inputs"]["modules"])


# ----------------------------------------------------------------------------------------------------------
# No machine paths in the executed notebooks
# ----------------------------------------------------------------------------------------------------------
def test_params_file_is_injected_relative_to_the_repository(tmp_path):
    repo = tmp_path / "my repo"
    assert pipeline.repo_relative(repo / "params" / "demo.yaml", repo) == "params/demo.yaml"
    assert pipeline.repo_relative(tmp_path / "other" / "p.yaml", repo) == "../other/p.yaml"
    assert pipeline.repo_relative(repo, repo) == "."


def test_relativize_notebook_removes_machine_paths_from_what_is_shown(tmp_path):
    repo, results = tmp_path / "my repo", tmp_path / "elsewhere" / "run"
    pairs = pipeline.path_replacements(repo, {results: "<results>"})
    nb = nbformat.v4.new_notebook()
    injected = nbformat.v4.new_code_cell(f'params_file = "{repo}/params/x.yaml"')
    injected.metadata["tags"] = ["injected-parameters"]
    code = nbformat.v4.new_code_cell(f'open("{repo}/keep/the/code.txt")', outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=f"wrote {results}/data/cube.zarr\n"),
        nbformat.v4.new_output("stream", name="stderr", text=f"{repo}/.venv/lib/x.py:1: Warning\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": f"PosixPath('{repo}')",
                                                       "text/html": f"<td>{repo}/params/x.yaml</td>",
                                                       "image/png": "iVBORw0KGgo="}, execution_count=1),
        nbformat.v4.new_output("error", ename="E", evalue=f"no {repo}/x", traceback=[f"File {repo}/a.py"]),
    ])
    nb.cells = [injected, code]
    nb.metadata["papermill"] = {"input_path": f"{repo}/notebooks/01.ipynb", "parameters": {"params_file": "p"},
                                "output_path": f"{results}/notebooks/01.partial.ipynb"}
    out = pipeline.relativize_notebook(nb, pairs)
    assert out.cells[1].source == f'open("{repo}/keep/the/code.txt")'  # the code the notebook ran is kept
    shown = json.dumps([out.metadata, out.cells[0], out.cells[1].outputs])
    assert str(tmp_path) not in shown
    assert out.cells[0].source == 'params_file = "params/x.yaml"'
    outputs = out.cells[1].outputs
    assert outputs[0].text == "wrote <results>/data/cube.zarr\n" and outputs[1].text.startswith(".venv/lib/x.py")
    assert outputs[2].data["text/plain"] == "PosixPath('.')"
    assert outputs[2].data["text/html"] == "<td>params/x.yaml</td>" and outputs[2].data["image/png"] == "iVBORw0KGgo="
    assert outputs[3].evalue == "no x" and outputs[3].traceback == ["File a.py"]
    assert out.metadata["papermill"]["input_path"] == "notebooks/01.ipynb"
    assert out.metadata["papermill"]["output_path"] == "<results>/notebooks/01.partial.ipynb"
    other = pipeline.relativize_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "x", outputs=[nbformat.v4.new_output("stream", name="stdout", text=f"{repo}2/file {repo}.bak")])]), pairs)
    assert other.cells[0].outputs[0].text == f"{repo}2/file {repo}.bak"  # other folders are left alone
