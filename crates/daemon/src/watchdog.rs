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
use std::path::Path;

/// The transient node attribute a node reports its armed watchdog's
/// timeout in (milliseconds).
pub const WATCHDOG_MS: &str = "#watchdog-ms";

/// The watchdog timeout a node's status reports, if it has one armed.
pub fn reported_ms(status: &tandem_cluster::NodeStatus) -> Option<u64> {
    status
        .transient
        .get(WATCHDOG_MS)?
        .parse()
        .ok()
        .filter(|ms| *ms > 0)
}

/// What the lease loop feeds.
pub trait Watchdog: Send {
    /// Restarts the countdown.
    fn feed(&mut self);
    /// The magic close: the countdown stops (a clean stop holding
    /// nothing). Without it, a closed device still resets the machine.
    fn disarm(self: Box<Self>);
}

/// An armed watchdog and its timeout as the device reports it.
pub struct Armed {
    pub dog: Box<dyn Watchdog>,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for Armed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Armed({} ms)", self.timeout_ms)
    }
}

// linux/watchdog.h: _IOWR('W', 6, int) and _IOR('W', 7, int).
const WDIOC_SETTIMEOUT: libc::c_ulong = 0xC004_5706;
const WDIOC_GETTIMEOUT: libc::c_ulong = 0x8004_5707;

/// A watchdog device (`/dev/watchdog`).
pub struct Device {
    file: std::fs::File,
}

impl Device {
    /// Opens `path` (arming it) and sets its timeout to `timeout_ms`,
    /// rounded up to whole seconds (the device's unit); returns the
    /// timeout the device reports back. On an error after opening, the
    /// device is disarmed again.
    pub fn arm(path: &Path, timeout_ms: u64) -> Result<Armed, String> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open the watchdog {}: {e}", path.display()))?;
        let device = Device { file };
        let secs = timeout_ms.div_ceil(1000).clamp(1, i32::MAX as u64) as libc::c_int;
        let reported = device.set_timeout(secs).and_then(|()| device.timeout());
        match reported {
            Ok(s) if s > 0 => Ok(Armed {
                dog: Box::new(device),
                timeout_ms: s as u64 * 1000,
            }),
            Ok(s) => {
                Box::new(device).disarm();
                Err(format!(
                    "the watchdog {} reports a timeout of {s} s",
                    path.display()
                ))
            }
            Err(e) => {
                Box::new(device).disarm();
                Err(format!(
                    "the watchdog {} cannot set its timeout to {secs} s: {e}",
                    path.display()
                ))
            }
        }
    }

    fn set_timeout(&self, secs: libc::c_int) -> std::io::Result<()> {
        let mut value = secs;
        // SAFETY: the ioctl reads and writes one int at the pointer, which
        // lives for the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), WDIOC_SETTIMEOUT, &mut value) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn timeout(&self) -> std::io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        // SAFETY: as above; the ioctl writes one int.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), WDIOC_GETTIMEOUT, &mut value) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(value)
    }
}

impl Watchdog for Device {
    fn feed(&mut self) {
        let _ = self.file.write_all(b"\0").and_then(|()| self.file.flush());
    }

    fn disarm(mut self: Box<Self>) {
        let _ = self.file.write_all(b"V").and_then(|()| self.file.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_no_watchdog_is_not_counted_on() {
        let path = std::env::temp_dir().join(format!("tandem-not-a-dog-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let err = Device::arm(&path, 1500).unwrap_err();
        assert!(err.contains("cannot set its timeout to 2 s"), "{err}");
        // Disarmed: the magic character was written.
        assert_eq!(std::fs::read(&path).unwrap(), b"V");
        std::fs::remove_file(&path).unwrap();
        let err = Device::arm(&path, 1000).unwrap_err();
        assert!(err.contains("cannot open the watchdog"), "{err}");
    }
}
