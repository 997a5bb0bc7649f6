"""Torque/PBS: `#PBS` directives, `qsub -W depend=afterok:...`, one `qstat -x`
per poll for the whole build, `qdel`.

Directives follow the qsub documentation (Torque 6): -N name, -o/-e paths
(quoted as a shell would when they hold a space), -V (export the environment), -l nodes=1:ppn=N
[:gpus=G][:feature], -l mem=Nmb, -l walltime=HH:MM:SS, -q queue, -A account,
-l qos=Q. Torque deletes a job whose afterok dependency failed.
`qstat -x` prints XML: job_state Q/H/W/T/S (waiting), R/E (running),
C (completed; exit_status says how).

No job arrays here: each job is a submission of its own (`limits` says
max_tasks 1). slurm-wlm-torque's qsub would pass `-t` on as `--array`, but
its tasks see SLURM_ARRAY_TASK_ID rather than Torque's PBS_ARRAYID, its
qstat cannot be asked about them, and real Torque names a task `ID[i]`:
one code path for both is not there yet.
"""

import os
import shlex
import xml.etree.ElementTree as ElementTree

from exmake.backends.base import Backend, JobState, SchedulerError


def walltime(seconds):
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours:02}:{rest // 60:02}:{rest % 60:02}"


class TorqueBackend(Backend):
    name = "torque"
    command = "qsub"
    prefix = "#PBS"

    def _quote(self, value):
        # qsub reads a directive line as a shell would (qsub_functions.c,
        # make_argv): ' or " enclose a word or part of one, literally, and a
        # backslash outside them escapes the next character. shlex's quoting
        # ('...', with ' written '"'"') is read back exactly.
        return shlex.quote(value)

    def directives(self, resources, cores, job_name, out, err, workdir, array=None):
        if array:
            raise SchedulerError("the Torque backend submits no job arrays")
        word = self.directive_value
        nodes = f"nodes=1:ppn={cores or 1}"
        if "gpus" in resources:
            nodes += f":gpus={resources['gpus']}"
        if "constraint" in resources:
            nodes += f":{resources['constraint']}"
        # qsub: a job name is at most 15 printable characters, the first alphabetic.
        # No `-d workdir`: the script cds there itself, and sbatch, which reads
        # #PBS lines under slurm-wlm-torque's qsub, rejects -d.
        lines = [f"-N {word(job_name[:15])}", f"-o {word(out)}", f"-e {word(err)}", "-V", f"-l {word(nodes)}"]
        if "mem" in resources:
            lines.append(f"-l mem={resources['mem']}mb")
        if "time" in resources:
            lines.append(f"-l walltime={walltime(resources['time'])}")
        if "partition" in resources:
            lines.append(f"-q {word(resources['partition'])}")
        if "account" in resources:
            lines.append(f"-A {word(resources['account'])}")
        if "qos" in resources:
            lines.append(f"-l qos={word(resources['qos'])}")
        lines += resources.get("extra", [])
        return [f"{self.prefix} {line}" for line in lines]

    def submit_argv(self, script, deps, array=None):
        # -o/-e on the command line too, relative to the batch directory qsub
        # runs in (qsub: a relative path is the submission directory's): the
        # #PBS lines alone are overridden by slurm-wlm-torque's qsub, which puts
        # its own on sbatch's command line.
        if array or any(kind != "afterok" for kind, _ in deps):
            raise SchedulerError("the Torque backend submits no job arrays")
        stem = script[:-3] if script.endswith(".sh") else script
        argv = ["qsub", "-o", f"{stem}.out", "-e", f"{stem}.err"]
        if deps:
            argv += ["-W", "depend=afterok:" + ":".join(job_id for _, job_id in deps)]
        return argv + [script]

    def submit(self, script, deps, array=None):
        # Submitted from its own directory by name: slurm-wlm-torque's qsub pastes
        # its arguments into a shell command line unquoted, and a project path
        # may hold a space.
        job_id = self._run(self.submit_argv(os.path.basename(script), deps, array),
                           cwd=os.path.dirname(script)).stdout.strip()
        if not job_id or " " in job_id:
            raise SchedulerError(f"qsub answered {job_id!r}, not a job id")
        return job_id

    def query(self, ids):
        self.queries += 1
        proc = self._run(["qstat", "-x", *ids], check=False)
        return parse_qstat_xml(proc.stdout)

    def cancel(self, ids):
        if ids:
            self._run(["qdel", *ids], check=False)


def parse_qstat_xml(text):
    """{id: JobState} from `qstat -x` output (jobs it no longer knows are absent)."""
    states = {}
    if not text.strip():
        return states
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return states
    for job in root.iter("Job"):
        job_id = (job.findtext("Job_Id") or "").strip()
        code = job.findtext("job_state", "").strip()
        exit_text = job.findtext("exit_status")
        exit_code = int(exit_text) if exit_text and exit_text.lstrip("-").isdigit() else None
        if code == "C":
            state = "COMPLETED" if exit_code == 0 else "FAILED"
        elif code in ("R", "E"):
            state = "RUNNING"
        else:
            state = "PENDING"
        states[job_id] = JobState(state, code, exit_code)
    return states
