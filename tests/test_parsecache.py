"""The parsed-YAML cache (exmake.fs.parsecache) never changes a result, and
never runs what it reads."""

import json
import os
import pickle


def cache_files(project):
    return sorted((project.root / "work/.exmake/parsed").glob("*.json"))


RECIPE = 'jobs:\n  a:\n    run: "echo {options.n} > o"\n    options: {n: 1}\n'


def test_a_build_caches_the_tree_and_the_next_build_uses_it(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    [cache] = cache_files(project)
    header, tree = cache.read_text().splitlines()
    assert json.loads(header)["format"] == 2
    assert '["a",2,{"m":3,' in tree and '["n",4,1]' in tree  # job a on line 2, option n on line 4
    # Poison the cached tree: if the build used it, option n would read 99.
    cache.write_text(header + "\n" + tree.replace('["n",4,1]', '["n",4,99]') + "\n")
    result = json.loads(project.run("-B", "--json", expect=0).out)
    assert project.read(f"work/{result['jobs']['a']['jobid']}/o") == "99\n"


def test_an_edited_recipe_is_parsed_again(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    project.recipe(RECIPE.replace("n: 1", "n: 2"))
    result = json.loads(project.run("--json", expect=0).out)
    assert result["jobs"]["a"]["reasons"] == ["option n: 1 -> 2"]


def test_a_broken_cache_file_is_ignored(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    [cache] = cache_files(project)
    cache.write_bytes(b"not json")
    project.recipe(RECIPE + "  b: {run: \"true\"}\n")
    assert set(json.loads(project.run("--json", expect=0).out)["jobs"]) == {"a", "b"}


def test_read_only_commands_and_bad_recipes_write_no_cache(project):
    project.recipe(RECIPE)
    project.run("-n", expect=0)
    project.run("status", expect=0)
    assert not (project.root / "work").exists()
    project.run(expect=0)
    [cache] = cache_files(project)
    before = cache.read_bytes()
    project.recipe(RECIPE.replace("n: 1", "n: 1\n    bogus: 3"))
    project.run(expect=2)
    assert cache_files(project) == [cache] and cache.read_bytes() == before


class Planted:
    """A pickle that, once unpickled, creates the file `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_is_never_run(project, tmp_path):
    # Issue 10, defect 3: the cache was a pickle in the workdir, so whoever
    # could write the workdir ran code as the user typing `exmake status`.
    project.recipe(RECIPE)
    project.run(expect=0)
    [cache] = (project.root / "work/.exmake/parsed").iterdir()  # whatever its format
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Planted(marker))
    stem = cache.stem.split("-")[0]                    # <hash> or <hash>-<uid>
    cache.with_name(stem + ".pickle").write_bytes(payload)  # where format 1 lived
    cache.with_suffix(".pickle").write_bytes(payload)
    cache.with_suffix(".json").write_bytes(payload)    # and where the cache lives now
    for args in (["status"], ["-n"], ["-B"], ["status"]):
        project.run(*args, expect=0)
        assert not marker.exists(), args


def test_a_cache_file_others_may_write_is_not_used(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    [cache] = cache_files(project)
    header, tree = cache.read_text().splitlines()
    cache.write_text(header + "\n" + tree.replace('["n",4,1]', '["n",4,99]') + "\n")
    os.chmod(cache, 0o664)  # group-writable: anyone in the group could have written it
    result = json.loads(project.run("-B", "--json", expect=0).out)
    assert project.read(f"work/{result['jobs']['a']['jobid']}/o") == "1\n"


ALIASES = """\
jobs:
  a:
    run: "echo {options.n} {options.words} > o"
    options: &opts {n: 1, words: [x, y]}
  b:
    run: "cat {inputs.data} > o"
    inputs: {data: data.txt}
    options:
      <<: *opts
      n: 2
"""


def test_the_cached_tree_gives_the_same_lines_and_aliases(project):
    project.recipe(ALIASES)
    project.write("data.txt", "d\n")
    project.run(expect=0)
    assert cache_files(project)
    assert project.read("work/a-1/o") == "1 x y\n" and project.read("work/b-1/o") == "d\n"
    # An error found after parsing names the same line, from the cache or not.
    os.unlink(project.root / "data.txt")
    from_cache = project.run("status", expect=2).err
    os.unlink(cache_files(project)[0])
    assert project.run("status", expect=2).err == from_cache
    assert "Exmakefile:7: jobs.b.inputs.data" in from_cache, from_cache
