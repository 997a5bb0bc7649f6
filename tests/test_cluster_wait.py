"""exmake.cluster's waiting loop against a scheduler that answers nothing
(the real-cluster side is in test_backend_slurm)."""

import json
from types import SimpleNamespace

import pytest

from exmake import cluster


class Silent:
    """A backend whose scheduler knows no job at all."""

    name = "slurm"

    def __init__(self):
        self.queries = 0

    def query(self, ids):
        self.queries += 1
        assert self.queries < 1000, "still waiting for a job the scheduler has forgotten"
        return {}

    def cancel(self, ids):
        pass


@pytest.fixture
def build(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "POLL_MIN_S", 0.001)
    monkeypatch.setattr(cluster, "POLL_MAX_S", 0.001)
    monkeypatch.setattr(cluster, "UNKNOWN_MIN_S", 0.05, raising=False)
    recipe = SimpleNamespace(workdir=str(tmp_path), jobs={"a": SimpleNamespace(deps={})})
    reporter = SimpleNamespace(job_done=lambda name, outcome: None)
    b = cluster.ClusterBuild(SimpleNamespace(recipe=recipe), Silent(), reporter, survey=None, build_id="b1")
    b.ids = {"a": "17"}
    return b


def test_a_forgotten_job_with_a_result_file_is_done_at_the_first_answer(build):
    cluster.write_result(build.recipe.workdir, "b1", "a",
                         SimpleNamespace(state="built", jobid="a-1", path="/w/a-1", reasons=["no earlier job"],
                                         detail={}, duration=0.5))
    build._drive([], wait=True)
    assert build.backend.queries == 1
    outcome = build.outcomes["a"]
    assert (outcome.state, outcome.jobid, outcome.reasons) == ("built", "a-1", ["no earlier job"])


def test_a_forgotten_job_without_a_result_fails_after_bounded_unknown_answers(build):
    build._drive([], wait=True)  # returns: before the fix, this loop never ended
    outcome = build.outcomes["a"]
    assert outcome.state == "failed" and "no longer known to the scheduler" in outcome.detail["reason"]
    assert build.backend.queries >= cluster.UNKNOWN_ANSWERS_MAX
    json.dumps(outcome.detail)  # reportable as it is


class Unreachable(Silent):
    """A scheduler whose controller does not answer for a while, then says COMPLETED."""

    def __init__(self, silent_answers):
        super().__init__()
        self.silent_answers = silent_answers

    def query(self, ids):
        from exmake.backends.base import JobState, SchedulerError
        self.queries += 1
        if self.queries <= self.silent_answers:
            raise SchedulerError("squeue failed (exit 1): Unable to contact slurm controller")
        return {i: JobState("COMPLETED", "") for i in ids}


def test_a_scheduler_that_does_not_answer_is_waited_for_not_taken_for_forgetting(build):
    """Second review of issue 10: a failed squeue made every job look forgotten,
    and a running job was reported failed while the controller was down."""
    build.backend = Unreachable(silent_answers=3 * cluster.UNKNOWN_ANSWERS_MAX)
    said = []
    build.reporter.write = said.append
    cluster.write_result(build.recipe.workdir, "b1", "a",
                         SimpleNamespace(state="built", jobid="a-1", path="/w/a-1", reasons=[],
                                         detail={}, duration=0.5))
    build._drive([], wait=True)
    assert build.outcomes["a"].state == "built"
    assert build.backend.queries == 3 * cluster.UNKNOWN_ANSWERS_MAX + 1
    assert any("does not answer" in line for line in said)
