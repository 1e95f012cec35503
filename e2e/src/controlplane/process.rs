//! Spawns control-plane processes so that they cannot outlive the test binary, and signals them.
//!
//! Each child gets its own process group (so signals reach everything it might start) and
//! `PR_SET_PDEATHSIG = SIGKILL`. The kernel sends that signal when the *thread* that forked the
//! child exits, not the process; test threads and tokio's blocking threads come and go, so every
//! child is forked from one dedicated thread that lives as long as the process. A test binary
//! that is killed, or that exits without running destructors (statics), still takes its
//! control planes down with it.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Grace period between SIGTERM and SIGKILL when stopping a control plane.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// Spawns `cmd` in its own process group, with `SIGKILL` as parent-death signal.
pub fn spawn_guarded(mut cmd: Command) -> io::Result<Child> {
    cmd.process_group(0);
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec; it only calls async-signal-safe functions
    // (prctl, getppid) and builds errors from raw OS codes without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then nobody would kill us.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let (reply, answer) = mpsc::channel();
    spawner()
        .send((cmd, reply))
        .map_err(|_| io::Error::other("the control-plane spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the control-plane spawner thread did not answer"))?
}

/// The long-lived thread that forks every child (see the module documentation).
fn spawner() -> &'static mpsc::Sender<SpawnRequest> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let started = thread::Builder::new()
            .name("controlplane-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // The requester may have given up; nothing to do about it here.
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(err) = started {
            // Without the thread every spawn fails with "spawner thread is gone", which is reported.
            tracing::error!(%err, "could not start the control-plane spawner thread");
        }
        tx
    })
}

/// Sends `signal` to the process group led by `pid`.
pub fn signal_group(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pgid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: plain syscall on a process group we created.
    if unsafe { libc::kill(-pgid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Stops `child`: SIGTERM (plus SIGCONT, in case it is paused), then SIGKILL after `grace`.
///
/// Blocking. Returns the exit status; the child is reaped.
pub fn terminate(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let pid = child.id();
    // ESRCH here only means it is already gone; try_wait below tells.
    let _ = signal_group(pid, libc::SIGTERM);
    let _ = signal_group(pid, libc::SIGCONT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        thread::sleep(Duration::from_millis(50));
    }
    tracing::warn!(
        pid,
        ?grace,
        "control plane ignored SIGTERM; sending SIGKILL"
    );
    let _ = signal_group(pid, libc::SIGKILL);
    child.wait()
}

/// Whether a process with this pid still runs (a zombie counts as gone).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: "pid (comm) S ...".
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Resident set size of a process in KiB, from `/proc/<pid>/status` (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_child_has_its_own_group_and_can_be_terminated() {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let mut child = spawn_guarded(cmd).unwrap();
        let pid = child.id();
        assert!(is_alive(pid));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        // fields[0] = state, [1] = ppid, [2] = pgrp
        assert_eq!(
            fields[2],
            pid.to_string(),
            "child leads its own process group"
        );
        let status_file = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(rss_kib(pid).is_some(), "{status_file}");
        let status = terminate(&mut child, Duration::from_secs(5)).unwrap();
        assert!(!status.success());
        assert!(!is_alive(pid));
    }

    #[test]
    fn stopped_child_is_terminated_too() {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let mut child = spawn_guarded(cmd).unwrap();
        signal_group(child.id(), libc::SIGSTOP).unwrap();
        terminate(&mut child, Duration::from_secs(5)).unwrap();
        assert!(!is_alive(child.id()));
    }

    #[test]
    fn refuses_to_signal_init_or_everyone() {
        assert!(signal_group(0, libc::SIGTERM).is_err());
        assert!(signal_group(1, libc::SIGTERM).is_err());
    }
}
