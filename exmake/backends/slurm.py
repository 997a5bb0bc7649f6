"""Slurm: `#SBATCH` directives, `sbatch --parsable --dependency=afterok:...`,
job arrays (`--array=0-N%M`), one `squeue` per poll for the whole build, `scancel`.

Arrays: one sbatch submits up to MaxArraySize-1 tasks (read with the other
limits from `scontrol show config`); `squeue -r` lists every task as
`ARRAY_TASK`, pending ones too, so one query still covers the build. A
task's logs are `<stem>.<task>.out` (`%a`).

Polling follows what a local Slurm 22.05 does: `squeue -t all` knows jobs
until MinJobAge after they end; for those it has forgotten, `sacct` (with
accounting) or `sacct -c` (jobcomp/filetxt, without) has the final state. A
job PENDING with reason DependencyNeverSatisfied will never run: it is
final (NEVER_RUNS). States read as words ("CANCELLED by 0" -> CANCELLED).
"""

import os

from exmake.backends.base import Backend, JobState, Limits, SchedulerError
from exmake.resources import format_time


class SlurmBackend(Backend):
    name = "slurm"
    command = "sbatch"
    prefix = "#SBATCH"
    arrays = True

    def _quote(self, value):
        # sbatch splits directive lines itself (src/sbatch/opt.c, _get_argument):
        # " or ' group a word, a backslash escapes the next character (inside
        # quotes too), an unquoted # starts a comment.
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def directives(self, resources, cores, job_name, out, err, workdir, array=None):
        """`array`: the task indices ("0-999%4"); the logs then get the task's index."""
        word = self.directive_value
        # --output/--error are file name patterns: % is special there, %% is a %.
        out, err = (self._log_pattern(path, array) for path in (out, err))
        lines = [f"--job-name={word(job_name)}", f"--output={word(out)}",
                 f"--error={word(err)}", f"--chdir={word(workdir)}"]
        if array:
            lines.append(f"--array={array}")
        if cores:
            lines.append(f"--cpus-per-task={cores}")
        if "mem" in resources:
            lines.append(f"--mem={resources['mem']}M")
        if "time" in resources:
            lines.append(f"--time={format_time(resources['time'])}")
        for key, flag in (("partition", "--partition"), ("account", "--account"), ("qos", "--qos"),
                          ("gpus", "--gpus"), ("constraint", "--constraint")):
            if key in resources:
                lines.append(f"{flag}={word(resources[key])}")
        lines += resources.get("extra", [])
        return [f"{self.prefix} {line}" for line in lines]

    @staticmethod
    def _log_pattern(path, array):
        """`path` as an --output/--error pattern; an array task's gets `.%a`
        (its index) before the extension: `qc.array0.out` -> `qc.array0.%a.out`."""
        if not array:
            return path.replace("%", "%%")
        stem, ext = os.path.splitext(path)
        return stem.replace("%", "%%") + ".%a" + ext.replace("%", "%%")

    def submit_argv(self, script, deps, array=None):
        # kill-on-invalid-dep: a job whose dependency failed is cancelled by
        # Slurm itself, so nothing pends forever after `--no-wait`.
        argv = ["sbatch", "--parsable", "--kill-on-invalid-dep=yes"]
        if array:  # overrides the script's own --array (tasks skipped since it was written)
            argv.append(f"--array={array}")
        if deps:
            by_kind = {}
            for kind, job_id in deps:
                by_kind.setdefault(kind, []).append(job_id)
            # `,` joins conditions that must all hold (sbatch(1), --dependency)
            argv.append("--dependency=" + ",".join(kind + ":" + ":".join(ids) for kind, ids in by_kind.items()))
        return argv + [script]

    def submit(self, script, deps, array=None):
        out = self._run(self.submit_argv(script, deps, array)).stdout.strip()
        job_id = out.split(";")[0]  # --parsable: "id" or "id;cluster"
        if not job_id.isdigit():
            raise SchedulerError(f"sbatch answered {out!r}, not a job id")
        return job_id

    def limits(self):
        """MaxArraySize and MaxSubmitJobs from `scontrol show config`. Task indices
        run from 0 to MaxArraySize-1; we take one less than the site allows,
        as the issue asks. MaxSubmitJobs is usually an association limit and
        absent from the config: absent, 0, UNLIMITED or N/A mean no limit."""
        config = parse_config(self._run(["scontrol", "show", "config"]).stdout)
        max_array = config.get("MaxArraySize", "").strip()
        if max_array == "0":  # slurm.conf(5): 0 disables job arrays
            max_tasks = 1
        else:
            max_array = _count(max_array)
            max_tasks = max(max_array - 1, 1) if max_array else None
        return Limits(max_tasks, _count(config.get("MaxSubmitJobs")))

    def path_problem(self, path):
        # sbatch's --output/--error are file name patterns: `%` we escape, but a
        # backslash means "expand nothing" and is dropped, so the log would go elsewhere.
        if "\\" in path:
            return "Slurm reads a backslash in a log path as a pattern character"
        return super().path_problem(path)

    def query(self, ids):
        """{id: JobState} for every id, in one squeue call (plus one sacct for forgotten
        ones); an array task's id is "ARRAY_TASK", and an array's id asks for all its
        tasks. SchedulerError when squeue fails: no answer, which says nothing of the
        jobs (squeue exits 1 on an unknown id only for a single id, with a message)."""
        self.queries += 1
        asked = list(dict.fromkeys(i.split("_")[0] for i in ids))
        proc = self._run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(asked), "-o", "%i|%T|%r"], check=False)
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
            raise SchedulerError(f"squeue failed (exit {proc.returncode}): {proc.stderr.strip()[:200]}")
        states = {}
        for line in proc.stdout.splitlines():
            job_id, state, reason = (line.split("|") + ["", ""])[:3]
            if state == "PENDING" and reason == "DependencyNeverSatisfied":
                state = "NEVER_RUNS"
            states[job_id.strip()] = JobState(state.split()[0] if state else "UNKNOWN", reason)
        missing = [i for i in ids if i not in states]
        if missing:
            states.update(self._accounting(missing))
        return states

    def _accounting(self, ids):
        for argv in (["sacct", "-n", "-X", "-P", "-j", ",".join(ids), "-o", "JobID,State,ExitCode"],
                     ["sacct", "-c", "-n", "-P", "-j", ",".join(ids), "-o", "JobID,State,ExitCode"]):
            proc = self._run(argv, check=False)
            if proc.returncode == 0:
                found = {}
                for line in proc.stdout.splitlines():
                    parts = line.split("|")
                    if len(parts) >= 3 and parts[0] in ids:
                        code = parts[2].split(":")[0]
                        found[parts[0]] = JobState(parts[1].split()[0], "", int(code) if code.isdigit() else None)
                return found
        return {}

    def cancel(self, ids):
        """Cancel jobs; an array's id cancels all its tasks."""
        if ids:
            self._run(["scancel", *ids], check=False)


def parse_config(text):
    """{key: value} from `scontrol show config` ("Key    = value" lines)."""
    config = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            config[key.strip()] = value.strip()
    return config


def _count(value):
    """A positive limit from a config value, or None for absent or unlimited
    (UNLIMITED, N/A, 0, or a word we do not know)."""
    words = (value or "").split()
    return int(words[0]) if words and words[0].isdigit() and int(words[0]) > 0 else None
