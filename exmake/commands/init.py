"""Write a starter Exmakefile (two jobs over a data file) to begin a recipe from.

Refuses to overwrite an existing file.
"""

import os

from exmake.errors import UsageError

STARTER = """\
# Exmakefile: the jobs of this pipeline. Run `exmake` to build, `exmake status`
# to see what is fresh, `exmake why JOB` to see why a job would run.
workdir: work          # every job runs in its own directory under here
results: results       # `publish:` puts symlinks to finished files here

jobs:
  words:
    # cwd is the job's own directory; {inputs.text} is an absolute path
    run: "tr -cs 'A-Za-z' '\\\\n' < {inputs.text} | tr A-Z a-z | grep -v '^$' > words.txt"
    inputs: {text: data/input.txt}
    outputs: [words.txt]

  top:
    run: "sort {deps.words}/words.txt | uniq -c | sort -rn | head -n {options.n} > top.txt"
    deps: [words]
    options: {n: 10}
    outputs: [top.txt]
    publish: {top.txt: top.txt}
"""

SAMPLE = "In the beginning was the word, and the word was data.\n"


def add_arguments(parser):
    pass


def main(args):
    if os.path.lexists(args.file):
        raise UsageError(f"{args.file} exists; exmake init will not overwrite it")
    with open(args.file, "x") as f:
        f.write(STARTER)
    print(f"wrote {args.file}")
    data = os.path.join(os.path.dirname(args.file) or ".", "data", "input.txt")
    if not os.path.exists(data):
        os.makedirs(os.path.dirname(data), exist_ok=True)
        with open(data, "w") as f:
            f.write(SAMPLE)
        print(f"wrote {data} (sample input; replace it with yours)")
    print("next: exmake")
    return 0
