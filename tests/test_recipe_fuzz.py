"""Fuzzing the whole recipe loader: whatever the file holds, `load_recipe`
returns a Recipe or raises RecipeError, never any other exception.

Three strategies feed it: arbitrary text, arbitrary bytes, and YAML dumped
from nested dicts/lists/scalars shaped like a recipe (real key names mixed
with junk). The loader runs in-process on a file in a scratch directory
that holds a few real inputs and a job script, so some drawn recipes get
deep into the checks.

Known bugs, each shown by a minimal xfail example at the end: the
structured strategy leaves out their triggers (NUL characters, ints beyond
the float range, `/` in drawn strings), so that the fuzzing finds new problems
instead of these. Drop the exclusions when the bugs are fixed.
"""

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exmake.errors import RecipeError
from exmake.recipe import Recipe, load_recipe

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SCRIPT = '''\
options = {"n": 1, "f": 0.5, "s": "x", "l": [1], "o": None}

def analysis(sliceno):
    return sliceno

def synthesis(analysis_res, options):
    return options
'''


@pytest.fixture(scope="module")
def scratch():
    """A project directory with inputs and a job script; only Exmakefile changes.
    It sits alone one level down, so an input `..` walks nothing else."""
    top = Path(tempfile.mkdtemp(prefix="exmake-fuzz-"))
    root = top / "proj"
    root.mkdir()
    (root / "data").mkdir()
    (root / "data" / "a.txt").write_text("a\n")
    (root / "data" / "b.txt").write_text("b\n")
    (root / "book.txt").write_text("in the beginning\n")
    (root / "m.py").write_text(SCRIPT)
    yield root
    shutil.rmtree(top)


def load(root, content):
    """Load `content` as the recipe: a Recipe, or None for a RecipeError; anything else propagates."""
    path = root / "Exmakefile"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    try:
        recipe = load_recipe(str(path))
    except RecipeError:
        return None
    assert isinstance(recipe, Recipe)
    return recipe


# -- (a) text and (b) bytes --------------------------------------------------

@FUZZ
@given(st.text(max_size=400))
def test_any_text_loads_or_is_a_recipe_error(scratch, text):
    load(scratch, text)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_load_or_are_a_recipe_error(scratch, data):
    load(scratch, data)


# -- (c) structured YAML that looks like a recipe ----------------------------

TOP_KEYS = ["jobs", "workdir", "results", "slices", "default", "profiles", "backend"]
JOB_KEYS = ["run", "method", "inputs", "deps", "options", "outputs", "publish", "env",
            "resources", "slices"]
OTHER_KEYS = ["profile", "cores", "mem", "time", "partition", "extra", "gpus", "t", "n", "f",
              "s", "l", "o", "a", "b", "count", "x", "1", "my-job", "", "jobz", "<<"]
JOB_NAMES = ["a", "b", "count", "words", "a1", "_", "1a", "my-job", "jobs"]
WORDS = ["a", "b", "count", "m.py", "book.txt", "data", "data/*.txt", "*.txt", "nothere.txt",
         "results.txt", ".", "..", "../x", "out/x.txt", ":default/latest:a", ":", ":a/b",
         "echo hi", "cat {inputs.t} > out", "echo {options.n}", "echo {deps.a}", "echo {sliceno}",
         "{nope.x}", "4G", "512M", "lots", "10m", "1h30m", "01:30:00", "small", "local", "slurm",
         "auto", "2024-01-01", "yes", "null", "~", "!!set", "&a", "*a", "pkg:name"]
# Drawn strings hold no `/` (an absolute input would walk the whole disk; and
# the known glob bug) and no NUL (known bug); ints stay in the float range (known bug).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), max_size=12)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), st.floats(),
                    st.sampled_from(WORDS), TEXT)
KEYS = st.one_of(st.sampled_from(TOP_KEYS + JOB_KEYS + OTHER_KEYS), TEXT, st.integers(-3, 3),
                 st.booleans(), st.none())
ANY = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                   | st.dictionaries(KEYS, inner, max_size=4), max_leaves=20)


def mostly(good, bad=ANY):
    """Usually a plausible value, about one time in ten anything at all.
    (st.one_of would not do: its choice of branch leans towards the later ones.)"""
    return st.integers(0, 9).flatmap(lambda i: bad if i == 5 else good)


def section(keys, values):
    return mostly(st.dictionaries(st.sampled_from(keys), values, max_size=3))


NAMES = st.sampled_from(JOB_NAMES[:6])
RESOURCES = section(["cores", "mem", "time", "partition", "extra", "gpus", "profile"],
                    mostly(st.sampled_from(["4G", "512M", "10m", "01:30:00", "small", "gpu", "lots"])
                           | st.integers(-1, 64), SCALARS))
OPTIONAL = {
    "inputs": section(["t", "u"], mostly(st.sampled_from(["book.txt", "data", "data/*.txt", "*.txt",
                                                          "nothere", ".", "m.py"]), SCALARS)),
    "deps": mostly(st.lists(NAMES, max_size=2) | section(["d", "e"], NAMES | st.sampled_from(WORDS))),
    "options": section(["n", "f", "s", "l", "o"], mostly(SCALARS, ANY)),
    "outputs": mostly(st.lists(st.sampled_from(["out.txt", "a/b.txt", "post.json", "../x", ".", ""]) | TEXT,
                               max_size=3)),
    "publish": section(["r.txt", "sub/r.txt", "..", "../r"],
                       st.sampled_from(["out.txt", "a/b.txt", "x"]) | TEXT),
    "env": section(["A", "B_1"], mostly(SCALARS | st.sampled_from(WORDS))),
    "resources": RESOURCES,
    "slices": mostly(st.integers(1, 8), st.integers(-1, 1100) | SCALARS),
}
RUN_JOB = st.fixed_dictionaries({"run": mostly(st.sampled_from(WORDS), SCALARS)}, optional=OPTIONAL)
METHOD_JOB = st.fixed_dictionaries({"method": mostly(st.just("m.py"), st.sampled_from(WORDS) | SCALARS)},
                                   optional=OPTIONAL)
NEITHER_JOB = st.fixed_dictionaries({}, optional={**OPTIONAL, "junk": ANY})
JOB = st.integers(0, 9).flatmap(lambda i: METHOD_JOB if i < 3 else NEITHER_JOB if i == 5 else RUN_JOB)
RECIPE = st.fixed_dictionaries(
    {"jobs": mostly(st.dictionaries(mostly(NAMES, KEYS), mostly(JOB), min_size=1, max_size=3))},
    optional={
        "workdir": mostly(st.sampled_from(["work", "w w", "."]) | TEXT),
        "results": mostly(st.sampled_from(["results", "out"]) | TEXT),
        "slices": mostly(st.integers(1, 8), st.integers(-1, 1100) | SCALARS),
        "default": mostly(NAMES | st.lists(NAMES | KEYS, max_size=2)),
        "profiles": section(["small", "big"], RESOURCES),
        "backend": mostly(st.sampled_from(["local", "slurm", "torque", "auto", "nonsense"])),
    })


@FUZZ
@given(mostly(RECIPE, ANY | st.dictionaries(KEYS, ANY, max_size=3)))
def test_recipe_shaped_yaml_loads_or_is_a_recipe_error(scratch, data):
    load(scratch, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def test_the_structured_strategy_reaches_valid_recipes(scratch):
    """A sanity check on the strategy: its kind of recipe can load."""
    recipe = load(scratch, yaml.safe_dump({"jobs": {"a": {"method": "m.py", "options": {"f": 2}},
                                                    "b": {"run": "cat {inputs.t}", "inputs": {"t": "data"},
                                                          "deps": ["a"]}}}))
    assert recipe is not None and recipe.jobs["a"].options["f"] == 2.0


# -- known bugs: minimal examples ---------------------------------------------

def test_glob_normalised_to_no_pattern_is_a_recipe_error(scratch):
    load(scratch, "jobs:\n  a:\n    run: x\n    inputs: {t: '*/..'}\n")


def test_method_with_nul_is_a_recipe_error(scratch):
    load(scratch, 'jobs:\n  a:\n    method: "m\\0.py"\n')


def test_huge_int_for_a_float_option_is_a_recipe_error(scratch):
    load(scratch, f"jobs:\n  a:\n    method: m.py\n    options: {{f: {10 ** 400}}}\n")
