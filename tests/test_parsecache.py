"""The parsed-YAML cache (exmake.fs.parsecache) never changes a result."""

import json
import pickle


def cache_files(project):
    return sorted((project.root / "work/.exmake/parsed").glob("*.pickle"))


RECIPE = 'jobs:\n  a:\n    run: "echo {options.n} > o"\n    options: {n: 1}\n'


def test_a_build_caches_the_tree_and_the_next_build_uses_it(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    [cache] = cache_files(project)
    fmt, digest, tree = pickle.loads(cache.read_bytes())
    assert tree["jobs"]["a"]["options"] == {"n": 1} and tree["jobs"].line_of("a") == 2
    # Poison the cached tree: if the build used it, option n would read 99.
    tree["jobs"]["a"]["options"]["n"] = 99
    cache.write_bytes(pickle.dumps((fmt, digest, tree)))
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
    cache.write_bytes(b"not a pickle")
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
