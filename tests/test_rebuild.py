"""exmake.rebuild: the pure fresh/stale decision and the exact reasons it gives.

Setup records are built by hand: a step (scheme, run, options, env, outputs,
slices), inputs as {local: [[path, digest], ...]} and deps as
{local: {"jobid", "outputs": [[path, digest], ...]}}.
"""

from exmake.rebuild import decide, explain


def setup(**step_changes):
    record = {
        "step": {"scheme": 1, "run": "wc -l {inputs.text}", "options": {"min": 2},
                 "env": {"LANG": "C"}, "outputs": ["out.txt"], "slices": None},
        "inputs": {"text": [["data/a.txt", "b3:aaa"]]},
        "deps": {"words": {"jobid": "words-1", "outputs": [["words.txt", "b3:111"]]}},
    }
    record["step"].update(step_changes)
    return record


def changed(mutate):
    """The reasons for a setup that `mutate` changed from setup()."""
    new = setup()
    mutate(new)
    return explain(setup(), new)


def test_no_earlier_job():
    assert decide(setup(), None, None).reasons == ["no earlier job"]


def test_forced_wins_over_a_trace():
    decision = decide(setup(), "count-1", setup(), forced=True)
    assert (decision.fresh, decision.jobid, decision.reasons) == (False, None, ["forced (-B)"])


def test_trace_makes_fresh():
    decision = decide(setup(), "count-3", setup(run="other"))
    assert (decision.fresh, decision.jobid, decision.reasons) == (True, "count-3", [])


def test_stale_without_trace():
    decision = decide(setup(), None, setup())
    assert (decision.fresh, decision.jobid) == (False, None)


def test_nothing_differs():
    assert explain(setup(), setup()) == ["no finished job with this key"]


def test_command_changed():
    assert explain(setup(), setup(run="wc -w {inputs.text}")) == ["command changed"]


def test_key_scheme_changed():
    assert explain(setup(), setup(scheme=2)) == ["key scheme changed"]


def test_option_changed():
    assert explain(setup(), setup(options={"min": 3})) == ["option min: 2 -> 3"]


def test_option_added_and_removed():
    assert explain(setup(), setup(options={"min": 2, "x": 1})) == ["option x added: 1"]
    assert explain(setup(options={"min": 2, "x": 1}), setup()) == ["option x removed"]


def test_option_with_space_is_quoted_and_long_value_cut():
    assert explain(setup(), setup(options={"min": "a b"})) == ["option min: 2 -> 'a b'"]
    reason = explain(setup(), setup(options={"min": "y" * 100}))[0]
    assert reason == "option min: 2 -> " + "y" * 37 + "..."


def test_env_changes():
    assert explain(setup(), setup(env={"LANG": "C.UTF-8"})) == ["env LANG: C -> C.UTF-8"]
    assert explain(setup(), setup(env={})) == ["env LANG removed"]
    assert explain(setup(), setup(env={"LANG": "C", "TZ": "UTC"})) == ["env TZ added: UTC"]


def test_outputs_and_slices_changed():
    assert explain(setup(), setup(outputs=["o.txt"])) == ["declared outputs changed"]
    assert explain(setup(), setup(slices=4)) == ["slices changed"]


def test_input_changed():
    def edit(s):
        s["inputs"]["text"][0][1] = "b3:bbb"
    assert changed(edit) == ["input data/a.txt changed"]


def test_input_file_added_and_removed():
    def add(s):
        s["inputs"]["text"].append(["data/b.txt", "b3:bbb"])
    assert changed(add) == ["input data/b.txt added"]

    def remove(s):
        s["inputs"]["text"] = []
    assert changed(remove) == ["input data/a.txt removed"]


def test_input_name_added_and_removed():
    def add(s):
        s["inputs"]["tool"] = [["tools/t.py", "b3:ccc"]]
    assert changed(add) == ["input tool added"]

    def remove(s):
        del s["inputs"]["text"]
    assert changed(remove) == ["input text removed"]


def test_dependency_new_output():
    def edit(s):
        s["deps"]["words"]["outputs"][0][1] = "b3:222"
    assert changed(edit) == ["dependency words produced new output"]


def test_dependency_rerun_with_same_output_is_no_reason():
    def edit(s):
        s["deps"]["words"]["jobid"] = "words-2"  # early cutoff: only outputs count
    assert changed(edit) == ["no finished job with this key"]


def test_dependency_added_and_removed():
    def add(s):
        s["deps"]["count"] = {"jobid": "count-1", "outputs": []}
    assert changed(add) == ["dependency count added"]

    def remove(s):
        del s["deps"]["words"]
    assert changed(remove) == ["dependency words removed"]


def test_several_reasons_in_order():
    def edit(s):
        s["step"]["run"] = "other"
        s["step"]["options"] = {"min": 3}
        s["inputs"]["text"][0][1] = "b3:bbb"
    assert changed(edit) == ["command changed", "option min: 2 -> 3", "input data/a.txt changed"]


def test_previous_from_an_older_format_without_env():
    old = setup()
    del old["step"]["env"]
    assert explain(old, setup()) == ["env LANG added: C"]
