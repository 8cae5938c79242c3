//! `ocf:tandem:LoopbackVip`: a virtual IP as an address alias on `lo`
//! (`ip addr add IP/32 dev lo label lo:tandem`); monitor checks that the
//! address is present. Parameters: `ip` (required), `cidr_netmask` (32),
//! `nic` (lo).
//!
//! Must not: touch any interface but the one configured (lo by default).

use super::{fail, metadata_xml, rc};
use std::net::IpAddr;
use std::process::{Command, Stdio};

pub fn action(action: &str, param: &dyn Fn(&str) -> Option<String>) -> i32 {
    if action == "meta-data" {
        print!(
            "{}",
            metadata_xml(
                "LoopbackVip",
                "Virtual IP as an address alias on the loopback interface",
                &[
                    ("ip", true, ""),
                    ("cidr_netmask", false, "32"),
                    ("nic", false, "lo")
                ],
            )
        );
        return rc::OK;
    }
    let Some(ip) = param("ip") else {
        return fail(rc::CONFIGURED, "parameter ip is required");
    };
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return fail(rc::CONFIGURED, &format!("ip `{ip}` is not an IP address"));
    };
    let mask =
        param("cidr_netmask").unwrap_or_else(|| if addr.is_ipv4() { "32" } else { "128" }.into());
    if !mask
        .parse::<u8>()
        .is_ok_and(|m| m <= if addr.is_ipv4() { 32 } else { 128 })
    {
        return fail(
            rc::CONFIGURED,
            &format!("cidr_netmask `{mask}` is not a prefix length"),
        );
    }
    let nic = param("nic").unwrap_or_else(|| "lo".into());
    if !nic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return fail(
            rc::CONFIGURED,
            &format!("nic `{nic}` is not an interface name"),
        );
    }
    let cidr = format!("{addr}/{mask}");
    match action {
        "validate-all" => rc::OK,
        "monitor" | "status" => match present(&nic, &addr) {
            Ok(true) => rc::OK,
            Ok(false) => rc::NOT_RUNNING,
            Err(e) => fail(rc::GENERIC, &e),
        },
        "start" => {
            if present(&nic, &addr) == Ok(true) {
                return rc::OK;
            }
            let mut args = vec!["addr", "add", &cidr, "dev", &nic];
            let label = format!("{nic}:tandem");
            if addr.is_ipv4() {
                args.extend(["label", &label]);
            }
            match ip_cmd(&args) {
                Ok(()) => rc::OK,
                Err(e) => fail(rc::GENERIC, &e),
            }
        }
        "stop" => {
            if present(&nic, &addr) != Ok(true) {
                return rc::OK;
            }
            match ip_cmd(&["addr", "del", &cidr, "dev", &nic]) {
                Ok(()) => rc::OK,
                Err(e) => fail(rc::GENERIC, &e),
            }
        }
        other => fail(
            rc::UNIMPLEMENTED,
            &format!("action `{other}` not supported"),
        ),
    }
}

fn present(nic: &str, addr: &IpAddr) -> Result<bool, String> {
    let out = Command::new("ip")
        .args(["-o", "addr", "show", "dev", nic])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip addr show dev {nic}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let needle = format!(" {addr}/");
    Ok(String::from_utf8_lossy(&out.stdout).contains(&needle))
}

fn ip_cmd(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
