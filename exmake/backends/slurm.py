"""Slurm: `#SBATCH` directives, `sbatch --parsable --dependency=afterok:...`,
one `squeue` per poll for the whole build, `scancel`.

Polling follows what a local Slurm 22.05 does: `squeue -t all` knows jobs
until MinJobAge after they end; for those it has forgotten, `sacct` (with
accounting) or `sacct -c` (jobcomp/filetxt, without) has the final state. A
job PENDING with reason DependencyNeverSatisfied will never run: it is
final (NEVER_RUNS). States read as words ("CANCELLED by 0" -> CANCELLED).
"""

from exmake.backends.base import Backend, JobState, SchedulerError
from exmake.resources import format_time


class SlurmBackend(Backend):
    name = "slurm"
    command = "sbatch"
    prefix = "#SBATCH"

    def _quote(self, value):
        # sbatch splits directive lines itself (src/sbatch/opt.c, _get_argument):
        # " or ' group a word, a backslash escapes the next character (inside
        # quotes too), an unquoted # starts a comment.
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def directives(self, resources, cores, job_name, out, err, workdir):
        word = self.directive_value
        # --output/--error are file name patterns: % is special there, %% is a %.
        lines = [f"--job-name={word(job_name)}", f"--output={word(out.replace('%', '%%'))}",
                 f"--error={word(err.replace('%', '%%'))}", f"--chdir={word(workdir)}"]
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

    def submit_argv(self, script, dep_ids):
        # kill-on-invalid-dep: a job whose dependency failed is cancelled by
        # Slurm itself, so nothing pends forever after `--no-wait`.
        argv = ["sbatch", "--parsable", "--kill-on-invalid-dep=yes"]
        if dep_ids:
            argv.append("--dependency=afterok:" + ":".join(dep_ids))
        return argv + [script]

    def submit(self, script, dep_ids):
        out = self._run(self.submit_argv(script, dep_ids)).stdout.strip()
        job_id = out.split(";")[0]  # --parsable: "id" or "id;cluster"
        if not job_id.isdigit():
            raise SchedulerError(f"sbatch answered {out!r}, not a job id")
        return job_id

    def path_problem(self, path):
        # sbatch's --output/--error are file name patterns: `%` we escape, but a
        # backslash means "expand nothing" and is dropped, so the log would go elsewhere.
        if "\\" in path:
            return "Slurm reads a backslash in a log path as a pattern character"
        return super().path_problem(path)

    def query(self, ids):
        """{id: JobState} for every id, in one squeue call (plus one sacct for forgotten
        ones). SchedulerError when squeue fails: no answer, which says nothing of the
        jobs (squeue exits 1 on an unknown id only for a single id, with a message)."""
        self.queries += 1
        proc = self._run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%r"], check=False)
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
        if ids:
            self._run(["scancel", *ids], check=False)
