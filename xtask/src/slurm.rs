//! `cargo xtask slurm`: `reel batch` on a real single-node Slurm cluster. It
//! installs Slurm and munge when missing (Debian's packages), starts munged,
//! slurmctld and slurmd as plain background daemons (no systemd, no cgroups) with
//! a configuration of its own, and then:
//!
//! 1. runs one batch on this machine over a corpus (mixed lengths and a bad file),
//!    the reference;
//! 2. submits `sbatch --array=0-3` of `reel batch` into a shared folder, each task's
//!    shard from Slurm's variables, and checks `reel batch merge` of that folder
//!    against the reference (the same inputs done and failed, every frames file
//!    byte for byte);
//! 3. submits the array again into a fresh folder, kills one task (SIGKILL) once it
//!    has finished part of its shard, resubmits that task alone, and checks that
//!    the set completes the same way.
//!
//! The daemons it started are stopped whatever happens.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::video;

/// The array's tasks.
const TASKS: u32 = 4;
/// The task killed and resubmitted.
const KILLED: u32 = 2;
/// The pid file munged writes.
const MUNGE_PID: &str = "/run/munge/munged.pid";

/// Runs the check, printing each phase's time.
pub fn run() -> Result<()> {
    let started = Instant::now();
    let bin = build_reel()?;
    let base = crate::target_dir().join("tmp/slurm");
    let phase = Instant::now();
    install()?;
    eprintln!(
        "xtask: slurm: installed in {:.1} s",
        phase.elapsed().as_secs_f64()
    );
    let cluster = Cluster::configure(&base)?;
    let result = cluster.start().and_then(|()| check(&cluster, &bin, &base));
    let stopped = cluster.stop();
    result?;
    stopped?;
    eprintln!(
        "xtask: slurm: all checks passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Builds `reel` as the tests do (debug, with in-process decoding when this
/// machine can) and returns its path.
fn build_reel() -> Result<PathBuf> {
    let mut build = crate::cargo();
    build.args(["build", "-p", "reel-cli", "--bin", "reel"]);
    crate::with_libav(&mut build);
    crate::step("cargo build -p reel-cli", build)?;
    let bin = crate::target_dir().join("debug/reel");
    ensure!(
        bin.is_file(),
        "the build left no binary at {}",
        bin.display()
    );
    Ok(bin)
}

/// `program args…` as root: directly when this is root, else through sudo.
fn as_root(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut cmd = Command::new("sudo");
        cmd.arg(program);
        cmd
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn on_path(program: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(program).is_file())
}

/// Installs slurm-wlm and munge when missing. The packages' install scripts would
/// start the daemons where an init system runs; a policy-rc.d that refuses every
/// start keeps them down (this check starts its own).
fn install() -> Result<()> {
    if ["slurmctld", "slurmd", "munged", "sbatch"]
        .iter()
        .all(|p| on_path(p))
    {
        return Ok(());
    }
    eprintln!("xtask: slurm: installing slurm-wlm and munge …");
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        let mut sh = as_root("sh");
        sh.args([
            "-c",
            "printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d",
        ]);
        quiet(sh, "writing /usr/sbin/policy-rc.d")?;
    }
    let mut update = as_root("apt-get");
    update.args(["update", "-qq"]);
    let mut get = as_root("apt-get");
    get.args([
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "slurm-wlm",
        "munge",
    ])
    .env("DEBIAN_FRONTEND", "noninteractive");
    let result = quiet(update, "apt-get update").and_then(|()| quiet(get, "apt-get install"));
    if own_policy {
        let mut rm = as_root("rm");
        rm.args(["-f", "/usr/sbin/policy-rc.d"]);
        quiet(rm, "removing /usr/sbin/policy-rc.d")?;
    }
    result
}

/// Runs `cmd`; its output is shown only when it fails.
fn quiet(mut cmd: Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `cmd` and returns its standard output.
fn output(mut cmd: Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `ready` every 0.2 s for up to `limit`.
fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> Result<()> {
    let until = Instant::now() + limit;
    while !ready() {
        if Instant::now() >= until {
            bail!("{what}: not within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The pid in `pid_file` when that process runs and is called `name`.
fn alive(pid_file: &Path, name: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == name).then_some(pid)
}

/// A single-node cluster: its configuration and the daemons this check started.
struct Cluster {
    conf: PathBuf,
    node: String,
    run: PathBuf,
    log: PathBuf,
    started: std::cell::RefCell<Vec<(&'static str, PathBuf)>>,
}

impl Cluster {
    /// Writes the configuration under `base` (fresh state every time): one node,
    /// this machine, as slurmd sees its hardware; no cgroups, no accounting.
    fn configure(base: &Path) -> Result<Self> {
        let run = base.join("run");
        let log = base.join("log");
        let spool = base.join("spool");
        if alive(&run.join("slurmctld.pid"), "slurmctld").is_some() {
            bail!(
                "a slurmctld from an earlier check still runs (pid file {})",
                run.join("slurmctld.pid").display()
            );
        }
        let _ = std::fs::remove_dir_all(&spool);
        for d in [&run, &log, &spool.join("ctld"), &spool.join("d")] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let node = output(
            {
                let mut c = Command::new("hostname");
                c.arg("-s");
                c
            },
            "hostname -s",
        )
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into());
        let hw = output(
            {
                let mut c = Command::new("slurmd");
                c.arg("-C");
                c
            },
            "slurmd -C",
        )
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
        .map(|line| {
            line.split_whitespace()
                .filter(|kv| {
                    [
                        "CPUs=",
                        "Boards=",
                        "SocketsPerBoard=",
                        "CoresPerSocket=",
                        "ThreadsPerCore=",
                    ]
                    .iter()
                    .any(|k| kv.starts_with(k))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            format!(
                "CPUs={}",
                std::thread::available_parallelism().map_or(1, |n| n.get())
            )
        });
        let conf = base.join("slurm.conf");
        let text = format!(
            "# written by cargo xtask slurm: one node, no cgroups, no accounting
ClusterName=reel
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
StateSaveLocation={spool}/ctld
SlurmdSpoolDir={spool}/d
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={log}/slurmctld.log
SlurmdLogFile={log}/slurmd.log
NodeName={node} NodeAddr=127.0.0.1 {hw} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
",
            spool = spool.display(),
            run = run.display(),
            log = log.display(),
        );
        std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        Ok(Self {
            conf,
            node,
            run,
            log,
            started: std::cell::RefCell::new(Vec::new()),
        })
    }

    /// A Slurm program with this cluster's configuration.
    fn slurm(&self, program: &str) -> Command {
        let mut cmd = as_root(program);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    /// Starts munged (when not already running), slurmctld and slurmd, and waits
    /// for the node to be idle.
    fn start(&self) -> Result<()> {
        let t0 = Instant::now();
        let mut dir = as_root("install");
        dir.args([
            "-d",
            "-o",
            "munge",
            "-g",
            "munge",
            "-m",
            "0755",
            "/run/munge",
        ]);
        quiet(dir, "making /run/munge")?;
        if std::fs::metadata("/etc/munge/munge.key").map_or(true, |m| m.len() == 0) {
            let mut key = as_root("runuser");
            key.args(["-u", "munge", "--", "mungekey", "-c"]);
            quiet(key, "mungekey -c")?;
        }
        if alive(Path::new(MUNGE_PID), "munged").is_none() {
            let mut munged = as_root("runuser");
            munged.args(["-u", "munge", "--", "/usr/sbin/munged"]);
            quiet(munged, "munged")?;
            self.started
                .borrow_mut()
                .push(("munged", PathBuf::from(MUNGE_PID)));
        }
        wait_for(Duration::from_secs(10), "munge answering", || {
            let mut c = Command::new("sh");
            c.args(["-c", "munge -n | unmunge"]);
            quiet(c, "munge -n | unmunge").is_ok()
        })?;
        let ctld_started = Instant::now();
        quiet(self.slurm("slurmctld"), "slurmctld")
            .with_context(|| format!("see {}", self.log.join("slurmctld.log").display()))?;
        self.started
            .borrow_mut()
            .push(("slurmctld", self.run.join("slurmctld.pid")));
        wait_for(Duration::from_secs(30), "slurmctld answering", || {
            let mut ping = self.slurm("scontrol");
            ping.arg("ping");
            output(ping, "scontrol ping").is_ok_and(|s| s.contains("UP"))
        })?;
        let mut slurmd = self.slurm("slurmd");
        slurmd.args(["-N", &self.node]);
        quiet(slurmd, "slurmd")
            .with_context(|| format!("see {}", self.log.join("slurmd.log").display()))?;
        self.started
            .borrow_mut()
            .push(("slurmd", self.run.join("slurmd.pid")));
        wait_for(Duration::from_secs(60), "the node idle", || {
            let mut c = self.slurm("sinfo");
            c.args(["-h", "-n", &self.node, "-o", "%T"]);
            output(c, "sinfo").is_ok_and(|s| s.trim() == "idle")
        })?;
        // A fresh slurmctld makes its first scheduling pass 3 s after it starts; a job
        // submitted before then misses sbatch --wait's first poll and waits 8 s more.
        if let Some(rest) = Duration::from_millis(3200).checked_sub(ctld_started.elapsed()) {
            std::thread::sleep(rest);
        }
        eprintln!(
            "xtask: slurm: munged, slurmctld and slurmd up in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Stops the daemons this check started, the last first: SIGTERM, and SIGKILL
    /// after 30 s.
    fn stop(&self) -> Result<()> {
        let mut failed = Vec::new();
        for (name, pid_file) in self.started.borrow_mut().drain(..).rev() {
            let Some(pid) = alive(&pid_file, name) else {
                continue;
            };
            let signal = |sig: &str| {
                let mut kill = as_root("kill");
                kill.args([sig, &pid.to_string()]);
                quiet(kill, "kill")
            };
            let _ = signal("-TERM");
            let gone = wait_for(Duration::from_secs(30), name, || {
                !Path::new(&format!("/proc/{pid}")).exists()
            });
            if gone.is_err() {
                let _ = signal("-KILL");
            }
            if Path::new(&format!("/proc/{pid}")).exists() {
                failed.push(format!("{name} ({pid})"));
            }
        }
        ensure!(failed.is_empty(), "could not stop {}", failed.join(", "));
        eprintln!("xtask: slurm: daemons stopped");
        Ok(())
    }

    /// Submits `script` as an array of `tasks` (e.g. `0-3`), waiting for its end
    /// when `wait`; returns the job id.
    fn submit(&self, script: &Path, tasks: &str, logs: &Path, wait: bool) -> Result<String> {
        let mut sbatch = self.slurm("sbatch");
        sbatch
            .arg("--parsable")
            .arg(format!("--array={tasks}"))
            .arg(format!("--output={}/%A_%a.out", logs.display()));
        if wait {
            sbatch.arg("--wait");
        }
        sbatch.arg(script);
        let out = sbatch
            .stdin(Stdio::null())
            .output()
            .context("could not start sbatch")?;
        let id = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if !out.status.success() {
            bail!(
                "sbatch --array={tasks} failed ({}): {} (task logs in {})",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                logs.display()
            );
        }
        ensure!(!id.is_empty(), "sbatch printed no job id");
        Ok(id)
    }

    /// Whether job `id` still has tasks queued or running.
    fn queued(&self, id: &str) -> bool {
        let mut squeue = self.slurm("squeue");
        squeue.args(["-h", "-j", id, "-o", "%i"]);
        output(squeue, "squeue").is_ok_and(|s| !s.trim().is_empty())
    }
}

/// The job script: one array task, `reel batch` over the corpus into `out`, the
/// shard from Slurm's variables and the array's size given (a resubmitted task
/// alone sees a count of one). Exit status 3 (some inputs are bad, recorded) is the
/// task's success.
fn job_script(bin: &Path, corpus: &Path, out: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         {bin} batch {corpus} --out-dir {out} --shard-count {TASKS} --jobs 1 --retries 0 --no-cache --quiet\n\
         status=$?\n\
         [ \"$status\" -eq 3 ] && exit 0\n\
         exit \"$status\"\n",
        bin = bin.display(),
        corpus = corpus.display(),
        out = out.display(),
    )
}

/// What a batch folder came to, from `reel batch merge DIR --json`: each input's
/// status and frames, and the bytes of every frames file.
#[derive(Debug, PartialEq)]
struct Outcome {
    inputs: Vec<(String, String, u64)>,
    files: Vec<(String, Vec<u8>)>,
    partial_files: u64,
}

fn outcome(bin: &Path, dir: &Path) -> Result<Outcome> {
    let mut merge = Command::new(bin);
    merge.args(["batch", "merge"]).arg(dir).arg("--json");
    let text = output(merge, "reel batch merge")?;
    let v: Value = serde_json::from_str(&text).context("reading reel batch merge's JSON")?;
    let mut inputs = Vec::new();
    for r in v["records"]
        .as_array()
        .context("merge printed no records")?
    {
        inputs.push((
            r["input"].as_str().unwrap_or_default().to_string(),
            r["status"].as_str().unwrap_or_default().to_string(),
            r["frames"].as_u64().unwrap_or_default(),
        ));
    }
    inputs.sort();
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".frames.jsonl") && !name.starts_with('.') {
            files.push((
                name,
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
            ));
        }
    }
    files.sort();
    Ok(Outcome {
        inputs,
        files,
        partial_files: v["partial_files"].as_u64().unwrap_or_default(),
    })
}

/// The checks, on a running cluster.
fn check(cluster: &Cluster, bin: &Path, base: &Path) -> Result<()> {
    let corpus = base.join("corpus");
    // Up to 50 s each, so that a task runs long enough to be killed part-way.
    let made = video::mixed(&base.join("videos"), "clip", 16, (160, 120), 40)?;
    let _ = std::fs::remove_dir_all(&corpus);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    for v in &made {
        let to = corpus.join(v.path.file_name().context("a video without a name")?);
        std::fs::copy(&v.path, &to).with_context(|| format!("copying to {}", to.display()))?;
    }
    std::fs::write(corpus.join("broken.mp4"), b"not a video").context("writing the bad input")?;

    // The reference: the whole corpus on this machine.
    let t = Instant::now();
    let single = base.join("single");
    let _ = std::fs::remove_dir_all(&single);
    let mut one = Command::new(bin);
    one.arg("batch")
        .arg(&corpus)
        .arg("--out-dir")
        .arg(&single)
        .args(["--jobs", "2", "--retries", "0", "--no-cache", "--quiet"]);
    let status = one.status().context("running reel batch")?;
    ensure!(
        status.code() == Some(3),
        "the single-machine batch: expected exit status 3 (one bad input), got {status}"
    );
    let reference = outcome(bin, &single)?;
    ensure!(
        reference.inputs.len() == made.len() + 1 && reference.files.len() == made.len(),
        "the single-machine batch: {} inputs and {} frames files",
        reference.inputs.len(),
        reference.files.len()
    );
    eprintln!(
        "xtask: slurm: single-machine reference in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The array into one shared folder, merged.
    let t = Instant::now();
    let shared = base.join("shared");
    let logs = base.join("jobs");
    for d in [&shared, &logs] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let script = base.join("batch.sh");
    std::fs::write(&script, job_script(bin, &corpus, &shared))
        .with_context(|| format!("writing {}", script.display()))?;
    cluster.submit(&script, &format!("0-{}", TASKS - 1), &logs, true)?;
    let merged = outcome(bin, &shared)?;
    ensure!(
        merged == reference,
        "the array's merged result differs from the single-machine run:\n  array: {:?}\n  single: {:?}",
        merged.inputs,
        reference.inputs
    );
    for k in 0..TASKS {
        let summary = shared.join(format!("batch.shard-{k}-of-{TASKS}.json"));
        let v: Value = serde_json::from_slice(
            &std::fs::read(&summary).with_context(|| format!("reading {}", summary.display()))?,
        )
        .with_context(|| format!("reading {}", summary.display()))?;
        ensure!(
            v["shard_source"] == "slurm",
            "task {k} did not take its shard from Slurm: {v}"
        );
    }
    eprintln!(
        "xtask: slurm: sbatch --array=0-{} merged equal to the reference in {:.1} s",
        TASKS - 1,
        t.elapsed().as_secs_f64()
    );

    // Again, one task killed part-way and resubmitted.
    let t = Instant::now();
    let again = base.join("shared-killed");
    let _ = std::fs::remove_dir_all(&again);
    std::fs::create_dir_all(&again).with_context(|| format!("creating {}", again.display()))?;
    let script = base.join("batch-killed.sh");
    std::fs::write(&script, job_script(bin, &corpus, &again))
        .with_context(|| format!("writing {}", script.display()))?;
    let id = cluster.submit(&script, &format!("0-{}", TASKS - 1), &logs, false)?;
    let manifest = again.join(format!("manifest.shard-{KILLED}-of-{TASKS}.jsonl"));
    // Inputs the manifest records as done.
    let lines = |p: &Path| {
        std::fs::read_to_string(p).map_or(0, |s| {
            s.lines()
                .filter(|l| l.contains("\"status\":\"done\""))
                .count()
        })
    };
    // Polled often (a task's input takes a fraction of a second); squeue, slower,
    // only every half second.
    let begun = Instant::now();
    let mut asked = Instant::now();
    while lines(&manifest) == 0 {
        if asked.elapsed() >= Duration::from_millis(500) {
            ensure!(
                begun.elapsed() < Duration::from_secs(120) && cluster.queued(&id),
                "task {KILLED} ended or did not finish an input within 120 s"
            );
            asked = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut cancel = cluster.slurm("scancel");
    cancel
        .args(["--signal=KILL", "--full"])
        .arg(format!("{id}_{KILLED}"));
    let _ = quiet(cancel, "scancel");
    wait_for(Duration::from_secs(120), "the array's end", || {
        !cluster.queued(&id)
    })?;
    let summary = again.join(format!("batch.shard-{KILLED}-of-{TASKS}.json"));
    ensure!(
        !summary.exists(),
        "task {KILLED} finished before it was killed (its batch summary is there): \
         the check did not kill it part-way"
    );
    let done_before = lines(&manifest);
    let partial = outcome(bin, &again)?;
    ensure!(
        partial.inputs.len() < reference.inputs.len(),
        "the killed array recorded every input"
    );
    cluster.submit(&script, &KILLED.to_string(), &logs, true)?;
    let completed = outcome(bin, &again)?;
    ensure!(
        completed == reference,
        "the resubmitted set differs from the single-machine run:\n  array: {:?}\n  single: {:?}",
        completed.inputs,
        reference.inputs
    );
    let v: Value = serde_json::from_slice(
        &std::fs::read(&summary).with_context(|| format!("reading {}", summary.display()))?,
    )
    .with_context(|| format!("reading {}", summary.display()))?;
    ensure!(
        v["skipped"].as_u64() == Some(done_before as u64),
        "the resubmitted task skipped {} inputs, not the {done_before} the killed one had done",
        v["skipped"]
    );
    eprintln!(
        "xtask: slurm: task {KILLED} killed after {done_before} of its inputs, resubmitted, \
         the set complete and equal to the reference in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
