//! The watchdog a node feeds while it is safe (`crate::lease`): a Linux
//! watchdog device (softdog or hardware) resets the machine when it is not
//! fed for its timeout. The daemon sets that timeout itself and reports it
//! to the cluster (`#watchdog-ms`), so the DC can count on it: a lost node
//! with a watchdog is reset within its timeout after its lease ended,
//! whether its daemon is cut off, paused, stuck or dead (`crate::settle`).
//!
//! A device whose timeout cannot be set and read back is not counted on.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The transient node attribute a node reports its armed watchdog's
/// timeout in (milliseconds).
pub const WATCHDOG_MS: &str = "#watchdog-ms";

/// The watchdog timeout a node's status reports, if it has one armed: a
/// device's whole seconds, 1 s to an hour (anything else is not a value
/// this daemon writes, and is not counted on).
pub fn reported_ms(status: &tandem_cluster::NodeStatus) -> Option<u64> {
    let ms: u64 = status.transient.get(WATCHDOG_MS)?.parse().ok()?;
    (ms.is_multiple_of(1000) && (1_000..=3_600_000).contains(&ms)).then_some(ms)
}

/// What the lease loop feeds.
pub trait Watchdog: Send {
    /// Opens the device (which starts its countdown) and sets its timeout;
    /// returns the timeout it reports. On an error it is not counted on
    /// (if it was opened, it stays open and is fed all the same: closing
    /// it without the magic character would leave it counting).
    fn arm(&mut self) -> Result<u64, String>;
    /// Restarts the countdown.
    fn feed(&mut self) -> std::io::Result<()>;
    /// The magic close: the countdown stops (a clean stop holding
    /// nothing). Without it, a closed device still resets the machine.
    fn disarm(&mut self);
}

// linux/watchdog.h: _IOWR('W', 6, int) and _IOR('W', 7, int), in the
// generic ioctl encoding (x86, arm, riscv; not powerpc, mips or sparc).
const WDIOC_SETTIMEOUT: u32 = 0xC004_5706;
const WDIOC_GETTIMEOUT: u32 = 0x8004_5707;

/// A watchdog device (`/dev/watchdog`), opened when armed.
pub struct Device {
    path: PathBuf,
    timeout_ms: u64,
    file: Option<std::fs::File>,
}

impl Device {
    /// The device at `path`, to be armed with `timeout_ms` (rounded up to
    /// whole seconds, the device's unit).
    pub fn new(path: &Path, timeout_ms: u64) -> Device {
        Device {
            path: path.to_path_buf(),
            timeout_ms,
            file: None,
        }
    }

    fn ioctl(&self, request: u32, value: &mut libc::c_int) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Err(std::io::Error::other("not open"));
        };
        // SAFETY: both requests read and/or write one int at the pointer,
        // which lives for the call. The request's type differs between C
        // libraries (`libc::Ioctl`).
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as libc::Ioctl, value) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Watchdog for Device {
    fn arm(&mut self) -> Result<u64, String> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| format!("cannot open the watchdog {}: {e}", self.path.display()))?;
        self.file = Some(file);
        let secs = self.timeout_ms.div_ceil(1000).clamp(1, 3600) as libc::c_int;
        let mut set = secs;
        self.ioctl(WDIOC_SETTIMEOUT, &mut set).map_err(|e| {
            format!(
                "the watchdog {} cannot set its timeout to {secs} s: {e}",
                self.path.display()
            )
        })?;
        let mut now = 0;
        self.ioctl(WDIOC_GETTIMEOUT, &mut now).map_err(|e| {
            format!(
                "the watchdog {} cannot tell its timeout: {e}",
                self.path.display()
            )
        })?;
        if now <= 0 {
            return Err(format!(
                "the watchdog {} reports a timeout of {now} s",
                self.path.display()
            ));
        }
        Ok(now as u64 * 1000)
    }

    fn feed(&mut self) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(b"\0").and_then(|()| file.flush())
    }

    fn disarm(&mut self) {
        if let Some(mut file) = self.file.take() {
            let _ = file.write_all(b"V").and_then(|()| file.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_no_watchdog_is_not_counted_on_and_not_magic_closed() {
        let path = std::env::temp_dir().join(format!("tandem-not-a-dog-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let mut dog = Device::new(&path, 1500);
        let err = dog.arm().unwrap_err();
        assert!(err.contains("cannot set its timeout to 2 s"), "{err}");
        // Kept open and fed; never the magic character on an error.
        dog.feed().unwrap();
        drop(dog);
        assert_eq!(std::fs::read(&path).unwrap(), b"\0");
        std::fs::remove_file(&path).unwrap();
        let err = Device::new(&path, 1000).arm().unwrap_err();
        assert!(err.contains("cannot open the watchdog"), "{err}");
    }

    #[test]
    fn only_a_timeout_this_daemon_could_report_counts() {
        let status = |v: &str| tandem_cluster::NodeStatus {
            transient: [(WATCHDOG_MS.to_string(), v.to_string())].into(),
            ..Default::default()
        };
        assert_eq!(reported_ms(&status("5000")), Some(5000));
        for bad in ["1", "0", "1500", "-1000", "9999999000", "x", ""] {
            assert_eq!(reported_ms(&status(bad)), None, "{bad}");
        }
    }
}
