"""Job keys: what makes two runs of a job the same run.

key = blake3 of the canonical JSON of
    {"step":   the canonical step (below),
     "inputs": {local: [[path relative to the recipe (or to its `input_dir:`), digest], ...]},
     "deps":   {local: [[output path in the dep's job dir, digest], ...]}}

The step holds the key scheme version, the job name (two recipe jobs never
share a directory), the kind, the command *template* (not its expansion, so
moving the project changes no key) or the job script's name and code digest
(see exmake.method), options (with a script's defaults filled in, so giving
a default explicitly changes nothing), env, declared outputs and the slice
count (and a chunked job's chunked input and chunk size: they decide
which chunks `synthesis` gets). Dependencies enter by their *output content*, not their keys:
an upstream job that re-runs and writes identical bytes leaves its
dependents fresh (early cutoff).
"""

import json

from exmake.fs.hashing import hash_bytes

KEY_SCHEME = 1


def canonical_step(job, code=None):
    """The part of a job's identity that the recipe (and, for a job script, its
    code digest `code`) decides."""
    step = {
        "scheme": KEY_SCHEME,
        "name": job.name,
        "kind": job.kind,
        "run": job.run,
        "options": job.options,
        "env": job.env,
        "outputs": job.outputs,
        "slices": job.slices,
    }
    if job.method:
        step["method"] = job.method.label
        step["code"] = code
    if job.chunks:  # only then: the keys of every other job stay as they were
        step["chunks"] = {"input": job.chunks, "size": job.chunk_size}
    return step


def input_digests(recipe, job, hashcache):
    """{local: [[relpath, digest], ...]} for every file of every input."""
    return {name: [[recipe.input_relpath(path), hashcache.digest(path)] for path in spec.files]
            for name, spec in job.inputs.items()}


def dep_digests(post):
    """The [[path, digest], ...] a dependency's post.json offers its dependents."""
    return post["outputs"]


def job_key(step, inputs, deps):
    """The hex key of a job from its step, input digests and dep output digests."""
    text = json.dumps({"step": step, "inputs": inputs, "deps": deps},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hash_bytes(text.encode())[3:]
