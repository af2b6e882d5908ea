//! The child processes reel starts (ffmpeg, ffprobe): each in its own process group,
//! so that the terminal's Ctrl-C reaches reel alone (reel decides how to stop), and
//! with a parent-death signal, so that none outlives reel, even killed with SIGKILL.
//!
//! The children that read an input are registered while they run: [`stop_inputs`]
//! kills them, so that a cancelled job never waits on a decoder or a probe that does
//! not move (a stalled stream, a FIFO nobody writes, a silent server).

use std::ffi::OsStr;
use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The process ids of the running children that read inputs.
static INPUTS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn inputs() -> MutexGuard<'static, Vec<u32>> {
    // Pushes and removals only: a poisoned list is still consistent.
    INPUTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A command for `program` that runs in its own process group and is killed when
/// reel ends.
pub(crate) fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: getpid, prctl and getppid are async-signal-safe and touch no
            // memory of the parent.
            let parent = unsafe { libc::getpid() };
            unsafe {
                cmd.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // The parent may have died before the signal was asked for.
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                    Ok(())
                });
            }
        }
    }
    cmd
}

/// Registers a running child that reads an input, for [`stop_inputs`].
pub(crate) fn register(child: &Child) {
    inputs().push(child.id());
}

/// Forgets a child: from then on [`stop_inputs`] never signals its id.
fn unregister(id: u32) {
    inputs().retain(|&p| p != id);
}

/// Waits until `child` has ended without reaping it (its id stays its own).
fn wait_unreaped(child: &Child) {
    #[cfg(target_os = "linux")]
    {
        let pid: libc::id_t = child.id();
        loop {
            // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waits on our own child; WNOWAIT leaves it to be reaped later.
            let r =
                unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }
}

/// Waits for a registered child to end on its own, then forgets and reaps it.
pub(crate) fn reap(child: &mut Child) -> io::Result<ExitStatus> {
    wait_unreaped(child);
    unregister(child.id());
    child.wait()
}

/// Forgets a registered child, kills it (if still running) and reaps it.
pub(crate) fn kill(child: &mut Child) -> io::Result<ExitStatus> {
    unregister(child.id());
    let _ = child.kill();
    child.wait()
}

/// Runs `cmd` as a registered input reader and collects its output (as
/// [`Command::output`] does).
pub(crate) fn output(mut cmd: Command) -> io::Result<Output> {
    use std::process::Stdio;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    register(&child);
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        kill(&mut child)?;
        return Err(io::ErrorKind::BrokenPipe.into());
    };
    let reader = std::thread::Builder::new()
        .name("reel-child-stderr".into())
        .spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            buf
        });
    let mut stdout = Vec::new();
    let read = out.read_to_end(&mut stdout);
    let stderr = match reader {
        Ok(h) => h.join().unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let status = reap(&mut child)?;
    read?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Kills every running child that reads an input (a decoder, a probe): what reads
/// from it then sees its end. A first Ctrl-C calls this, so that stopping never
/// waits on an input that does not move. Encoders are left to finish their files.
pub fn stop_inputs() {
    let ids = inputs();
    for &id in ids.iter() {
        if let Ok(pid) = libc::pid_t::try_from(id) {
            // SAFETY: a signal to our own child, which is not reaped while it is
            // registered (the list's lock is held), so the id is still its own.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Kills one running child that reads an input, by its process id (as
/// [`VideoSource::process_id`](crate::VideoSource::process_id) gives it): what
/// reads from it then sees its end. An id that is not a registered reader is left
/// alone, so a stale id never signals another process.
pub fn stop_input(id: u32) {
    let ids = inputs();
    if ids.contains(&id)
        && let Ok(pid) = libc::pid_t::try_from(id)
    {
        // SAFETY: a signal to our own child, not reaped while it is registered (the
        // list's lock is held), so the id is still its own.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}
