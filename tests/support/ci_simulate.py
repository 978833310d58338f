"""Run the CI examples' shell steps here, as GitHub Actions / GitLab CI would, with a simulated environment.

Not a CI emulator: just enough of each runner to prove the examples' own shell is right.
- GitHub: jobs in `needs` order, matrix `include` rows, `${{ }}` references to github/matrix/secrets/
  steps outputs/env, `if:` with always()/success()/==/!=, a fresh GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
  file per step, and the few actions the workflow uses (cache restore/save, upload/download artifact)
  done with local directories. Steps named "Install ..." are skipped, after checking they only install.
  A local composite action (`uses: ./`, this repository's action.yml) runs step by step with its
  `inputs`, `runner` and `steps` contexts; other actions can be faked (`Simulation.fake_actions`).
- GitLab: stages in order, `parallel:matrix` rows, `variables` expanded like GitLab does, artifacts
  and cache as directories; `before_script` (installs only, checked) is skipped.
Script steps run with `bash -eo pipefail`, as both runners do.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]  # holds action.yml: what `uses: ./` runs
INSTALL_LINE = re.compile(
    r"^\s*(python3? -m pip install|\S*pip\"? install|npm install -g|apt-get |python3 -m venv|export PATH=)"
)
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class StopSimulation(Exception):
    """A step needs something this branch does not have yet (e.g. `claude-run ledger merge`)."""


FakeAction = Callable[[dict[str, str], Path, Path], dict[str, str]]


@dataclass
class StepResult:
    job: str
    name: str
    kind: str  # run | uses | skipped | install-skipped
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""


@dataclass
class Simulation:
    root: Path
    env: dict[str, str]  # the machine's environment: PATH with the fakes, HOME...
    before_step: Callable[[str], None] = lambda script: None  # may raise StopSimulation
    results: list[StepResult] = field(default_factory=list)
    run_key: str = "run"  # artifacts belong to one workflow run / pipeline
    action_root: Path = REPO_ROOT  # where `uses: ./` finds action.yml
    # Actions the simulator does not know: name -> fn(with, workspace, runner temp) -> step outputs.
    fake_actions: dict[str, FakeAction] = field(default_factory=dict)

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts" / self.run_key

    @property
    def caches(self) -> Path:
        return self.root / "caches"

    def run_script(self, script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        self.before_step(script)
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def result(self, job: str, name: str) -> StepResult:
        for r in self.results:
            if r.job == job and r.name == name:
                return r
        raise KeyError(f"{job} / {name}: no such step ran; ran {[(r.job, r.name) for r in self.results]}")


def check_install_only(script: str) -> None:
    lines = [line for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    for line in lines:
        for part in line.split("&&"):
            if not INSTALL_LINE.match(part):
                raise AssertionError(f"an install step does more than installing: {part!r}")


# ---------------------------------------------------------------------------------------------------------
# GitHub Actions
# ---------------------------------------------------------------------------------------------------------


@dataclass
class GitHubRun:
    """One workflow run: the `github` context and the runner variables every job sees."""

    run_id: str = "9001"
    run_attempt: str = "1"
    repository: str = "acme/widgets"
    event_name: str = "pull_request"
    pr_number: int = 7
    head_ref: str = "fix-tests"
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    overrides: dict[str, str] = field(default_factory=dict)  # workflow `env:` values to replace


def _lookup(path: str, ctx: dict[str, Any]) -> Any:
    node: Any = ctx
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            if path.startswith("steps.") and path.count(".") == 3:
                return ""  # a step that did not run (or set no such output): GitHub gives ''
            raise AssertionError(f"unknown expression context {path!r}")
        node = node[part]
    return node


def evaluate(expr: str, ctx: dict[str, Any]) -> Any:
    expr = expr.strip()
    for op in ("||", "&&"):  # no parentheses in the files simulated: plain left-to-right precedence
        if op in expr:
            values = [evaluate(part, ctx) for part in expr.split(op)]
            return any(map(_truthy, values)) if op == "||" else all(map(_truthy, values))
    if expr.startswith("!") and not expr.startswith("!="):
        return not _truthy(evaluate(expr[1:], ctx))
    if expr in ("always()", "success()", "failure()"):
        return {"always()": True, "success()": not ctx["_failed"], "failure()": ctx["_failed"]}[expr]
    m = re.fullmatch(r"(.+?)\s*(==|!=)\s*'([^']*)'", expr)
    if m:
        left = str(evaluate(m.group(1), ctx))
        return (left == m.group(3)) if m.group(2) == "==" else (left != m.group(3))
    if re.fullmatch(r"[A-Za-z_][\w.-]*", expr):
        return _lookup(expr, ctx)
    raise AssertionError(f"expression too clever for the simulator: {expr!r}")


def _truthy(value: Any) -> bool:
    return value not in ("", None, False, 0)


def substitute(value: Any, ctx: dict[str, Any]) -> str:
    text = str(value)
    return _EXPR.sub(lambda m: str(evaluate(m.group(1), ctx)), text)


def _matrix_rows(job: dict[str, Any]) -> list[dict[str, Any]]:
    matrix = (job.get("strategy") or {}).get("matrix")
    if not matrix:
        return [{}]
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    rows = (
        [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())] if axes else []
    )
    return rows + list(matrix.get("include") or [])


def _job_order(jobs: dict[str, Any]) -> list[str]:
    done: list[str] = []
    while len(done) < len(jobs):
        for name, job in jobs.items():
            needs = job.get("needs") or []
            needs = [needs] if isinstance(needs, str) else needs
            if name not in done and all(n in done for n in needs):
                done.append(name)
    return done


def run_github_workflow(sim: Simulation, workflow: dict[str, Any], run: GitHubRun) -> dict[str, bool]:
    """Run every job; returns job name -> succeeded."""
    wf_env = {**(workflow.get("env") or {}), **run.overrides}
    sim.run_key = f"gh-{run.run_id}-{run.run_attempt}"
    outcome: dict[str, bool] = {}
    for job_name in _job_order(workflow["jobs"]):
        job = workflow["jobs"][job_name]
        ok_all = True
        for index, row in enumerate(_matrix_rows(job)):
            ok_all &= _run_github_job(sim, workflow, wf_env, job_name, job, row, index, run, outcome)
        outcome[job_name] = ok_all
    return outcome


def _run_github_job(
    sim: Simulation,
    workflow: dict[str, Any],
    wf_env: dict[str, Any],
    job_name: str,
    job: dict[str, Any],
    row: dict[str, Any],
    index: int,
    run: GitHubRun,
    outcome: dict[str, bool],
) -> bool:
    workspace = sim.root / "runners" / sim.run_key / f"{job_name}-{index}" / "workspace"
    temp = workspace.parent / "temp"
    workspace.mkdir(parents=True)
    temp.mkdir()
    github = {
        "workspace": str(workspace),
        "run_id": run.run_id,
        "run_attempt": run.run_attempt,
        "repository": run.repository,
        "event_name": run.event_name,
        "workflow": workflow["name"],
        "token": "ghs_fake_token_for_the_simulation",
        "event": {"pull_request": {"number": run.pr_number}},
        "job": job_name,
    }
    ctx: dict[str, Any] = {
        "github": github,
        "runner": {"temp": str(temp), "os": "Linux"},
        "matrix": row,
        "secrets": {"ANTHROPIC_API_KEY": "sk-ant-fake"},
        "steps": {},
        "env": {},
        "_failed": False,
    }
    needs = job.get("needs") or []
    needs_failed = any(not outcome.get(n, True) for n in ([needs] if isinstance(needs, str) else needs))
    if "if" in job:
        if not evaluate(job["if"], {**ctx, "_failed": needs_failed}):
            return True
    elif needs_failed:
        return True
    runner_env = {
        **sim.env,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": run.repository,
        "GITHUB_WORKFLOW": workflow["name"],
        "GITHUB_JOB": job_name,
        "GITHUB_RUN_ID": run.run_id,
        "GITHUB_RUN_ATTEMPT": run.run_attempt,
        "GITHUB_EVENT_NAME": run.event_name,
        "GITHUB_REF": f"refs/pull/{run.pr_number}/merge",
        "GITHUB_REF_NAME": f"{run.pr_number}/merge",
        "GITHUB_HEAD_REF": run.head_ref,
        "GITHUB_BASE_REF": "main",
        "GITHUB_SHA": run.sha,
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(temp),
    }
    env_chain: dict[str, str] = {}
    for scope in (wf_env, job.get("env") or {}):
        for k, v in scope.items():
            ctx["env"] = dict(env_chain)
            env_chain[k] = substitute(v, ctx)
    where = _Where(job_name, workspace, temp, runner_env)
    _run_steps(sim, job["steps"], ctx, env_chain, where, prefix="")
    return not ctx["_failed"]


@dataclass
class _Where:
    job: str
    workspace: Path
    temp: Path
    runner_env: dict[str, str]


def _condition(step: dict[str, Any]) -> str:
    """A step's `if:`; without a status function GitHub reads it as `success() && (...)`."""
    cond = _EXPR.sub(lambda m: m.group(1), str(step.get("if", "success()")))
    if not re.search(r"\b(always|success|failure|cancelled)\(\)", cond):
        cond = f"success() && {cond}"
    return cond


def _run_steps(
    sim: Simulation,
    steps: list[dict[str, Any]],
    ctx: dict[str, Any],
    env_chain: dict[str, str],
    where: _Where,
    prefix: str,
    extra_env: dict[str, str] | None = None,
) -> None:
    """Run job (or composite action) steps in order; ctx["_failed"] records a failure."""
    from claude_run.ci.outputs import parse_outputs

    for n, step in enumerate(steps):
        name = prefix + substitute(step.get("name") or step.get("uses") or f"step {n}", ctx)
        ctx["env"] = dict(env_chain)
        if not evaluate(_condition(step), ctx):
            sim.results.append(StepResult(where.job, name, "skipped"))
            continue
        step_env = {**env_chain, **{k: substitute(v, ctx) for k, v in (step.get("env") or {}).items()}}
        if "run" in step:
            if name.removeprefix(prefix).startswith("Install"):
                check_install_only(step["run"])
                sim.results.append(StepResult(where.job, name, "install-skipped"))
                continue
            tag = f"{prefix.count('/')}-{n}-{len(sim.results)}"
            out_file, summary_file = where.temp / f"output-{tag}", where.temp / f"summary-{tag}"
            out_file.touch()
            summary_file.touch()
            env = {
                **where.runner_env,
                **(extra_env or {}),
                **step_env,
                "GITHUB_OUTPUT": str(out_file),
                "GITHUB_STEP_SUMMARY": str(summary_file),
            }
            proc = sim.run_script(step["run"], where.workspace, env)
            res = StepResult(
                where.job,
                name,
                "run",
                proc.returncode,
                proc.stdout,
                proc.stderr,
                parse_outputs(out_file.read_text()),
                summary_file.read_text(),
            )
        else:
            with_ = {k: substitute(v, ctx) for k, v in (step.get("with") or {}).items()}
            res = _github_uses(sim, step["uses"], with_, ctx, env_chain, where, name)
        sim.results.append(res)
        if step.get("id"):
            ctx["steps"][step["id"]] = {"outputs": res.outputs}
        if res.returncode != 0:
            ctx["_failed"] = True


def _github_uses(
    sim: Simulation,
    uses: str,
    with_: dict[str, str],
    ctx: dict[str, Any],
    env_chain: dict[str, str],
    where: _Where,
    name: str,
) -> StepResult:
    action = uses.split("@", 1)[0]
    if action == "./":
        return _run_composite(sim, sim.action_root, with_, ctx, env_chain, where, name)
    if action in sim.fake_actions:
        outputs = sim.fake_actions[action](with_, where.workspace, where.temp)
        return StepResult(where.job, name, "uses", outputs=outputs)
    _github_action(sim, uses, with_, where.workspace)
    return StepResult(where.job, name, "uses")


def _run_composite(
    sim: Simulation,
    root: Path,
    with_: dict[str, str],
    caller: dict[str, Any],
    env_chain: dict[str, str],
    where: _Where,
    name: str,
) -> StepResult:
    """A composite action as the runner runs one: its own inputs and steps contexts, its outputs."""
    meta = load_yaml(root / "action.yml")
    assert meta["runs"]["using"] == "composite"
    declared = meta.get("inputs") or {}
    unknown = sorted(set(with_) - set(declared))
    assert not unknown, f"inputs not declared by {root / 'action.yml'}: {unknown}"
    inputs: dict[str, str] = {}
    for key, spec in declared.items():
        if key in with_:
            inputs[key] = with_[key]
        else:
            assert not spec.get("required"), f"required input {key!r} missing"
            inputs[key] = substitute(spec.get("default", ""), caller)
    ctx: dict[str, Any] = {
        **caller,
        "github": {**caller["github"], "action_path": str(root)},
        "inputs": inputs,
        "steps": {},
        "_failed": False,
    }
    first = len(sim.results)
    _run_steps(
        sim,
        meta["runs"]["steps"],
        ctx,
        env_chain,
        where,
        prefix=f"{name} / ",
        extra_env={"GITHUB_ACTION_PATH": str(root)},
    )
    inner = sim.results[first:]
    for step in meta["runs"]["steps"]:
        if "run" in step:
            assert step.get("shell") == "bash", f"composite run steps need a shell: {step.get('name')}"
    outputs = {k: substitute(v["value"], ctx) for k, v in (meta.get("outputs") or {}).items()}
    return StepResult(
        where.job,
        name,
        "uses",
        1 if ctx["_failed"] else 0,
        "".join(r.stdout for r in inner),
        "".join(r.stderr for r in inner),
        outputs,
        "".join(r.summary for r in inner),
    )


def _github_action(sim: Simulation, uses: str, with_: dict[str, str], workspace: Path) -> None:
    action = uses.split("@", 1)[0]
    if action in ("actions/checkout", "actions/setup-python", "actions/setup-node"):
        return  # the workspace exists; python, node and the fakes are on PATH
    if action == "actions/cache":
        return  # a download cache (pip's): nothing the simulated steps read
    if action == "actions/cache/restore":
        keys = [with_["key"], *[k for k in with_.get("restore-keys", "").splitlines() if k.strip()]]
        for key in keys:
            hit = _cache_lookup(sim.caches, key.strip(), exact=key is keys[0])
            if hit is not None:
                shutil.copytree(hit, workspace / with_["path"], dirs_exist_ok=True)
                return
        return
    if action == "actions/cache/save":
        target = sim.caches / with_["key"]
        if not target.exists() and (workspace / with_["path"]).exists():
            shutil.copytree(workspace / with_["path"], target)  # caches are immutable once saved
        return
    if action == "actions/upload-artifact":
        src = workspace / with_["path"]
        if not src.exists():
            if with_.get("if-no-files-found", "warn") == "error":
                raise AssertionError(f"artifact path {src} missing")
            return
        dest = sim.artifacts / with_["name"]
        if dest.exists():
            raise AssertionError(f"artifact {with_['name']} uploaded twice (v4 refuses that)")
        dest.mkdir(parents=True)
        if src.is_file():  # a single file is stored at the artifact's root
            shutil.copy2(src, dest / src.name)
        else:
            shutil.copytree(src, dest, dirs_exist_ok=True)
        return
    if action == "actions/download-artifact":
        base = workspace / with_.get("path", ".")
        for art in sorted(sim.artifacts.iterdir()) if sim.artifacts.exists() else []:
            if fnmatch.fnmatch(art.name, with_.get("pattern", "*")):
                shutil.copytree(art, base / art.name, dirs_exist_ok=True)  # one directory per artifact
        return
    raise AssertionError(f"the simulator does not know {uses}")


def _cache_lookup(caches: Path, key: str, exact: bool) -> Path | None:
    if not caches.exists():
        return None
    if exact:
        return caches / key if (caches / key).exists() else None
    matches = [p for p in caches.iterdir() if p.name.startswith(key)]
    return max(matches, key=lambda p: p.stat().st_mtime_ns) if matches else None  # the newest, like GitHub


# ---------------------------------------------------------------------------------------------------------
# GitLab CI
# ---------------------------------------------------------------------------------------------------------

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def expand(value: str, env: dict[str, str]) -> str:
    """GitLab expands $VAR / ${VAR} in `variables:` values from the variables already defined."""
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


def _gitlab_rows(job: dict[str, Any]) -> list[dict[str, str]]:
    matrix = (job.get("parallel") or {}).get("matrix") if isinstance(job.get("parallel"), dict) else None
    if not matrix:
        return [{}]
    rows: list[dict[str, str]] = []
    for entry in matrix:
        axes = {k: (v if isinstance(v, list) else [v]) for k, v in entry.items()}
        rows += [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    return rows


def _gitlab_jobs(pipeline: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for stage in pipeline["stages"]:
        for name, job in pipeline.items():
            if isinstance(job, dict) and job.get("stage") == stage and not name.startswith("."):
                yield name, job


@dataclass
class GitLabPipeline:
    pipeline_id: str = "4242"
    project_path: str = "acme/widgets"
    project_id: str = "99"
    mr_iid: str = "12"
    source_branch: str = "fix-tests"
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    extra: dict[str, str] = field(default_factory=dict)  # CI/CD variables (masked secrets)


def run_gitlab_pipeline(sim: Simulation, pipeline: dict[str, Any], p: GitLabPipeline) -> dict[str, bool]:
    outcome: dict[str, bool] = {}
    sim.run_key = f"gl-{p.pipeline_id}"
    default = pipeline.get("default") or {}
    job_id = itertools.count(1000)
    for name, job in _gitlab_jobs(pipeline):
        for script_key in ("before_script",):
            lines = job.get(script_key, default.get(script_key)) or []
            check_install_only("\n".join(lines))  # installs only: skipped here, the fakes are on PATH
        ok_all = True
        for index, row in enumerate(_gitlab_rows(job)):
            jid = str(next(job_id))
            workdir = sim.root / "runners" / sim.run_key / f"{name}-{index}" / "project"
            workdir.mkdir(parents=True)
            if job.get("when") != "always" and not all(outcome.values()):
                continue
            label = f"{name}: [{', '.join(row.values())}]" if row else name
            env = {
                **sim.env,
                **p.extra,
                "CI": "true",
                "GITLAB_CI": "true",
                "CI_PROJECT_DIR": str(workdir),
                "CI_PROJECT_PATH": p.project_path,
                "CI_PROJECT_ID": p.project_id,
                "CI_API_V4_URL": "https://gitlab.example.com/api/v4",
                "CI_PIPELINE_ID": p.pipeline_id,
                "CI_PIPELINE_SOURCE": "merge_request_event",
                "CI_PIPELINE_URL": f"https://gitlab.example.com/{p.project_path}/-/pipelines/{p.pipeline_id}",
                "CI_JOB_ID": jid,
                "CI_JOB_NAME": label,
                "CI_JOB_URL": f"https://gitlab.example.com/{p.project_path}/-/jobs/{jid}",
                "CI_COMMIT_SHA": p.sha,
                "CI_COMMIT_REF_NAME": p.source_branch,
                "CI_MERGE_REQUEST_IID": p.mr_iid,
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": p.source_branch,
            }
            for scope in (pipeline.get("variables") or {}, job.get("variables") or {}, row):
                for k, v in scope.items():
                    env[k] = expand(str(v), env)
            # Artifacts of earlier stages (or of `needs`) land in the project directory.
            for stage in pipeline["stages"][: pipeline["stages"].index(job["stage"])]:
                for art in sorted((sim.artifacts / stage).glob("*")):
                    shutil.copytree(art, workdir, dirs_exist_ok=True)
            cache = job.get("cache")
            if cache and "pull" in cache.get("policy", "pull-push"):
                hit = sim.caches / cache["key"]
                if hit.exists():
                    shutil.copytree(hit, workdir, dirs_exist_ok=True)
            script = "\n".join(job["script"])
            proc = sim.run_script(script, workdir, env)
            allowed = (job.get("allow_failure") or {}) if isinstance(job.get("allow_failure"), dict) else {}
            ok = proc.returncode == 0 or proc.returncode in allowed.get("exit_codes", [])
            sim.results.append(StepResult(label, "script", "run", proc.returncode, proc.stdout, proc.stderr))
            ok_all &= ok
            art = job.get("artifacts") or {}
            if ok or art.get("when") == "always":
                dest = sim.artifacts / job["stage"] / f"{name}-{index}"
                for pattern in art.get("paths") or []:
                    for src in workdir.glob(pattern.rstrip("/")):
                        target = dest / src.relative_to(workdir)
                        if src.is_dir():
                            shutil.copytree(src, target, dirs_exist_ok=True)
                        else:
                            target.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copy2(src, target)
                dotenv = (art.get("reports") or {}).get("dotenv")
                if dotenv and (workdir / dotenv).exists():
                    (sim.root / "dotenv").mkdir(exist_ok=True)
                    shutil.copy2(workdir / dotenv, sim.root / "dotenv" / f"{name}-{index}.env")
            if ok and cache and "push" in cache.get("policy", "pull-push"):
                for pattern in cache.get("paths") or []:
                    src = workdir / pattern.rstrip("/")
                    if src.exists():
                        shutil.copytree(
                            src, sim.caches / cache["key"] / pattern.rstrip("/"), dirs_exist_ok=True
                        )
        outcome[name] = ok_all
    return outcome


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data
