"""Cores and memory as slots (exmake.schedule.Slots), tried as a user would:
real builds of real jobs, and overlap measured from the stamps each job
writes itself (its own start and end), never from how long the build took."""

import json

STAMPED = 's=$(date +%s.%N); sleep {seconds}; e=$(date +%s.%N); echo "$s $e" > stamps'


def job(seconds=1.0, cores=None, mem=None):
    resources = {k: v for k, v in (("cores", cores), ("mem", mem)) if v is not None}
    lines = f"    run: '{STAMPED.format(seconds=seconds)}'\n"
    if resources:
        lines += f"    resources: {json.dumps(resources)}\n"
    return lines


def recipe(project, jobs):
    project.recipe("jobs:\n" + "".join(f"  {name}:\n{body}" for name, body in jobs.items()))


def stamps(project, name):
    start, end = project.read(f"work/{name}-1/stamps").split()
    return float(start), float(end)


def overlap(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_a_two_core_job_overlaps_nothing_at_j2(project):
    recipe(project, {"one": job(), "big": job(cores=2), "two": job(), "three": job()})
    project.run("-j", "2", expect=0)
    big = stamps(project, "big")
    for other in ("one", "two", "three"):
        assert not overlap(big, stamps(project, other)), other
    assert overlap(stamps(project, "one"), stamps(project, "two")) or \
        overlap(stamps(project, "two"), stamps(project, "three"))  # 1-core jobs do share


def test_a_one_core_job_backfills_beside_a_two_core_job_at_j3(project):
    recipe(project, {"big": job(cores=2), "small": job()})
    project.run("-j", "3", expect=0)
    assert overlap(stamps(project, "big"), stamps(project, "small"))


def test_two_two_core_jobs_never_overlap_at_j3(project):
    recipe(project, {"first": job(0.5, cores=2), "second": job(0.5, cores=2), "small": job(0.5)})
    project.run("-j", "3", expect=0)
    assert not overlap(stamps(project, "first"), stamps(project, "second"))


def test_a_waiting_big_job_is_not_starved_by_small_ones(project):
    # At -j 2: `a` holds one core, `big` waits for two. Only the core free
    # when it began waiting is open to the small jobs behind it (one backfills);
    # the cores freed later are held for `big`, so it starts before the others.
    recipe(project, {"a": job(1.0), "big": job(0.5, cores=2),
                     **{f"c{n}": job(0.5) for n in range(4)}})
    project.run("-j", "2", expect=0)
    big = stamps(project, "big")
    assert big[0] >= stamps(project, "a")[1]
    before = [n for n in range(4) if stamps(project, f"c{n}")[0] < big[0]]
    assert len(before) <= 1, before
    for n in range(4):
        assert not overlap(big, stamps(project, f"c{n}"))


def test_memory_is_held_from_the_mem_budget(project):
    recipe(project, {"a": job(0.5, mem="600M"), "b": job(0.5, mem="600M"), "c": job(0.5)})
    project.run("-j", "3", "--mem", "1G", expect=0)
    assert not overlap(stamps(project, "a"), stamps(project, "b"))
    assert overlap(stamps(project, "a"), stamps(project, "c")) or overlap(stamps(project, "b"), stamps(project, "c"))


def test_a_job_asking_more_cores_than_there_are_runs_alone_with_a_note(project):
    project.recipe("""\
    jobs:
      wide:
        run: "echo {resources.cores} $OMP_NUM_THREADS $MKL_NUM_THREADS $OPENBLAS_NUM_THREADS $EXMAKE_CORES > cores.txt"
        resources: {cores: 8}
      narrow:
        run: "echo {resources.cores} $OMP_NUM_THREADS $EXMAKE_CORES > cores.txt"
    """)
    result = project.run("-j", "2", expect=0)
    assert "wide" in result.out and "needs 8 cores, -j gives 2: it runs alone, on 2" in result.out
    assert project.read("work/wide-1/cores.txt").split() == ["2"] * 5
    assert project.read("work/narrow-1/cores.txt").split() == ["1"] * 3


def test_a_sliced_job_holds_its_slices_capped_at_j(project):
    project.recipe("""\
    jobs:
      sliced:
        run: 's=$(date +%s.%N); sleep 0.5; e=$(date +%s.%N); echo "$s $e $OMP_NUM_THREADS $EXMAKE_CORES" > stamps.{sliceno}'
        slices: 3
      other:
        run: 's=$(date +%s.%N); sleep 0.5; e=$(date +%s.%N); echo "$s $e" > stamps'
    """)
    project.run("-j", "2", expect=0)
    other = stamps(project, "other")
    for n in range(3):
        start, end, omp, cores = project.read(f"work/sliced-1/stamps.{n}").split()
        assert not overlap(other, (float(start), float(end)))
        assert (omp, cores) == ("1", "2")  # a slice's share of the job's two cores


def test_the_recipe_env_wins_over_the_thread_variables(project):
    project.recipe("""\
    jobs:
      a:
        run: "echo $OMP_NUM_THREADS > omp.txt"
        env: {OMP_NUM_THREADS: "7"}
    """)
    project.run(expect=0)
    assert project.read("work/a-1/omp.txt").strip() == "7"


def test_a_misspelt_resource_placeholder_is_a_recipe_error(project):
    project.recipe('jobs:\n  a:\n    run: "echo {resources.core}"\n')
    result = project.run(expect=2)
    assert "placeholder {resources.core} names nothing" in result.err


def test_a_bad_mem_budget_is_a_usage_error(project):
    project.recipe('jobs:\n  a:\n    run: "true"\n')
    result = project.run("--mem", "lots", expect=2)
    assert "--mem lots: 'lots' is not a size" in result.err


# -- found by reviewing the slots ---------------------------------------------------------

def test_a_job_about_to_be_reused_or_skipped_holds_no_slots(project):
    """A reused job waited for all the cores it would have needed, and a job about
    to be skipped became the head that held freed cores back."""
    recipe(project, {"big": job(0.1, cores=2)})
    project.run("-j", "2", expect=0)
    recipe(project, {"big": job(0.1, cores=2), "long": job(2.0),
                     "after": "    run: 'cat {deps.b}/stamps > seen'\n    deps: {b: big}\n"})
    result = project.run("-j", "2", "--json", expect=0)
    states = {n: j["state"] for n, j in json.loads(result.out)["jobs"].items()}
    assert states == {"big": "reused", "long": "built", "after": "built"}
    from datetime import datetime
    seen = datetime.fromisoformat(json.loads(project.read("work/after-1/post.json"))["start"])
    long_end = datetime.fromisoformat(json.loads(project.read("work/long-1/post.json"))["end"])
    assert seen < long_end  # `after` ran beside `long`, not after it
