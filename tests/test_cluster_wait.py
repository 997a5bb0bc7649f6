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
    build._wait()
    assert build.backend.queries == 1
    outcome = build.outcomes["a"]
    assert (outcome.state, outcome.jobid, outcome.reasons) == ("built", "a-1", ["no earlier job"])


def test_a_forgotten_job_without_a_result_fails_after_bounded_unknown_answers(build):
    build._wait()  # returns: before the fix, this loop never ended
    outcome = build.outcomes["a"]
    assert outcome.state == "failed" and "no longer known to the scheduler" in outcome.detail["reason"]
    assert build.backend.queries >= cluster.UNKNOWN_ANSWERS_MAX
    json.dumps(outcome.detail)  # reportable as it is
