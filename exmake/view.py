"""A job's stable view: the names it reads its inputs and dependencies by.

A job's command names what it reads relative to its own job directory, in
words that do not depend on where the project or the workdir are, nor on
the job numbers of its dependencies:

    {deps.NAME}      deps/NAME              deps/NAME -> the dependency's job directory
    {deps.NAME}      deps/NAME/A deps/NAME/B ...   a fan-in (`NAME: FAMILY@*`):
                                            deps/NAME/A -> instance FAMILY@A's directory
    {inputs.NAME}    inputs/NAME/FILE       a file: inputs/NAME -> the directory holding it
    {inputs.NAME}    inputs/NAME            a directory: inputs/NAME -> it
    {inputs.NAME}    inputs/NAME/PATH ...   a glob: inputs/NAME -> the directory it starts
                                            listing at, one word per file under it

so the expanded command text is the same in every checkout and under every
job number, and tools that write their command line into what they make
(samtools' and bcftools' `@PG ... CL:`, bwa's, many ML tools' saved configs)
write the same bytes for the same work: early cutoff holds through them, and
a rebuild elsewhere is bit-identical. `ls -l work/JOB/deps/` shows which job
directories a job read.

A file input links its *directory*, not the file, so what lies beside it
(an index: `.bai`, `.fai`, `.tbi`, bwa's `.bwt`...) is found beside it, as
tools expect; the file keeps its name, and so its extension.

This module computes the names (`placeholder_values`, `script_inputs`,
`script_deps`, `commands`) and the links (`links`); exmake.fs.links makes
them, relative, in the job directory. The links are not outputs of the job
(exmake.jobrun) and not part of its key: keys hash the command template and
the content the links lead to (exmake.keys).
"""

import os
import shlex

from exmake.inputs import glob_base
from exmake.recipe import PLACEHOLDER_RE
from exmake.resources import requested_cores

DEPS_DIR = "deps"
INPUTS_DIR = "inputs"


def expand(template, values, quote=True):
    """Fill `{inputs.x}`-style placeholders; `values` maps the placeholder text to a value or list."""
    def fill(match):
        value = values[match.group(0)]
        items = value if isinstance(value, list) else [value]
        return " ".join(shlex.quote(str(v)) if quote else str(v) for v in items)
    return PLACEHOLDER_RE.sub(fill, template)


def dep_link(local):
    """The link of dependency `local`: `deps/x`, or `deps/x/A` for a fan-in's `x@A`."""
    return os.path.join(DEPS_DIR, *local.split("@", 1))


def input_names(spec, root):
    """The names a job reads input `spec` by: one path, or a list (a glob, a directory's files)."""
    link = os.path.join(INPUTS_DIR, spec.name)
    if spec.kind == "file":
        return os.path.join(link, os.path.basename(spec.path))
    base = _input_target(spec, root)
    return [os.path.join(link, os.path.relpath(f, base)) for f in spec.files]


def _input_target(spec, root):
    """What `inputs/NAME` points at: a file's directory, a directory, a glob's base."""
    if spec.kind == "file":
        return os.path.dirname(spec.path)
    if spec.kind == "dir":
        return spec.path
    return os.path.normpath(glob_base(spec.root or root, spec.pattern)[0])


def placeholder_values(job, root, cores=None):
    """Placeholder text -> value (a list: one shell word each) for the job's command.
    `cores`: what the build gives the job (-n, which runs nothing, shows what it asks for)."""
    values = {"{resources.cores}": cores or requested_cores(job.resources, job.slices)}
    for name, spec in job.inputs.items():
        values[f"{{inputs.{name}}}"] = input_names(spec, root) if spec.kind != "dir" \
            else os.path.join(INPUTS_DIR, name)
    for local in [*job.deps, *job.external]:
        values[f"{{deps.{local}}}"] = dep_link(local)
    for local, members in job.fanin.items():
        values[f"{{deps.{local}}}"] = [dep_link(member) for member in members]
    for name, value in job.options.items():
        values[f"{{options.{name}}}"] = value
    return values


def script_inputs(job, root):
    """`inputs` as a job script sees them: a path, or a list of paths, per name."""
    return {name: input_names(spec, root) for name, spec in job.inputs.items()}


def script_deps(job, dep_paths):
    """`deps` as a job script sees them: {local: (view path, jobid)}, a fan-in a list of those.
    `dep_paths`: {local: the dependency's job directory}."""
    deps = {local: (dep_link(local), os.path.basename(path)) for local, path in dep_paths.items()}
    for local, members in job.fanin.items():
        deps[local] = [deps.pop(member) for member in members]
    return deps


def links(job, root, dep_paths):
    """{link path in the job directory: absolute target} for every input and dependency."""
    view = {os.path.join(INPUTS_DIR, name): _input_target(spec, root) for name, spec in job.inputs.items()}
    view.update({dep_link(local): path for local, path in dep_paths.items()})
    return view


def commands(job, root, cores=None):
    """The exact command text a shell job runs: one, or one per slice; [] for a job script."""
    if not job.run:
        return []
    values = placeholder_values(job, root, cores)
    if not job.slices:
        return [expand(job.run, values)]
    return [expand(job.run, {**values, "{sliceno}": n, "{slices}": job.slices}) for n in range(job.slices)]
