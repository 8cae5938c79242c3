//! How the DC settles a lost node, decided without I/O: a node that the DC
//! no longer hears may be cut off (its lease rule stops its resources), or
//! its daemon may be dead or paused (nothing stops them). The DC cannot
//! tell which, so it recovers the node's resources only after something
//! that does not depend on the node's daemon: a fence, the node's watchdog
//! (reported armed, it resets a node that holds resources without a lease
//! within its timeout), or an operator's `tandem node confirm-down` (the
//! analogue of `stonith_admin --confirm`); in the last two cases only once
//! every lease the node could hold has expired by the DC's clock
//! (`docs/safety.md`). A node that left cleanly
//! (it announced its shutdown, its resources were moved or stopped and
//! recorded so, and its lease has expired) needs neither.

/// What the DC knows of one lost node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostNode {
    pub name: String,
    /// How long ago every lease it could hold expired (`None`: it may
    /// still hold one).
    pub lease_expired_ms: Option<u64>,
    /// An operator confirmed it down (and it has not held a lease since).
    pub confirmed_down: bool,
    /// A fence may be tried now (none is running and the last attempt is
    /// long enough ago).
    pub fence_due: bool,
    /// It announced a clean shutdown (the `shutdown` node attribute).
    pub shutting_down: bool,
    /// Its recorded history shows nothing active or pending there.
    pub runs_nothing: bool,
    /// The timeout of the watchdog it reported armed when it last joined.
    pub watchdog_ms: Option<u64>,
}

/// How long after a node's lease expired its watchdog has surely reset
/// it: 2.5 times the timeout. The last feed of a node that holds
/// resources comes before its lease ends, and a daemon dying after that
/// makes the kernel feed once more on the close (at most T later), so the
/// reset comes within 2·T; the half more is for a device's coarse timer,
/// clock-rate drift and the reset itself (Pacemaker advises 2·T for
/// `stonith-watchdog-timeout`).
pub fn watchdog_reset_within_ms(timeout_ms: u64) -> u64 {
    timeout_ms.saturating_mul(5) / 2
}

/// What settles a lost node in this configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettledBy {
    /// A fence device can power it off.
    Fencing,
    /// Only an operator can say it is down.
    Operator,
}

/// What to do about one lost node now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run the fence devices against it.
    Fence,
    /// Record it down (its resources are recovered): `how` goes into the
    /// fencing history.
    RecordDown { how: &'static str, detail: String },
    /// Nothing may be scheduled until it is settled.
    Wait { why: String },
}

/// Decides for one lost node.
pub fn decide(node: &LostNode, by: &SettledBy) -> Decision {
    if node.shutting_down && node.runs_nothing {
        // Nothing can start there without a pending record first: once it
        // holds no lease there is nothing to recover, and nothing to fence.
        return match node.lease_expired_ms {
            Some(ms) => Decision::RecordDown {
                how: "clean-shutdown",
                detail: format!("it left cleanly, running nothing; its lease expired {ms} ms ago"),
            },
            None => Decision::Wait {
                why: format!(
                    "{} left cleanly; waiting for its lease to expire",
                    node.name
                ),
            },
        };
    }
    if let (Some(timeout), Some(ms)) = (node.watchdog_ms, node.lease_expired_ms) {
        if ms >= watchdog_reset_within_ms(timeout) {
            return Decision::RecordDown {
                how: "watchdog",
                detail: format!(
                    "its watchdog ({timeout} ms) has reset it: its lease expired {ms} ms ago"
                ),
            };
        }
    }
    if *by == SettledBy::Fencing {
        return if node.fence_due {
            Decision::Fence
        } else {
            Decision::Wait {
                why: format!("{} is being fenced (or fencing is retried soon)", node.name),
            }
        };
    }
    match (node.confirmed_down, node.lease_expired_ms) {
        (true, Some(ms)) => Decision::RecordDown {
            how: "confirmed-down",
            detail: format!("an operator confirmed it down; its lease expired {ms} ms ago"),
        },
        (true, None) => Decision::Wait {
            why: format!(
                "{} is confirmed down; waiting for every lease it could hold to expire",
                node.name
            ),
        },
        (false, _) if node.watchdog_ms.is_some() => Decision::Wait {
            why: format!(
                "{} is lost; its watchdog resets it: its resources are recovered {} ms after its lease expired",
                node.name,
                watchdog_reset_within_ms(node.watchdog_ms.unwrap_or_default())
            ),
        },
        (false, _) => Decision::Wait {
            why: format!(
                "{} is lost and no fence device can power it off: its resources stay blocked until it returns or an operator runs `tandem node confirm-down {}`",
                node.name, node.name
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(lease_expired_ms: Option<u64>, confirmed_down: bool, fence_due: bool) -> LostNode {
        LostNode {
            name: "n2".into(),
            lease_expired_ms,
            confirmed_down,
            fence_due,
            shutting_down: false,
            runs_nothing: false,
            watchdog_ms: None,
        }
    }

    #[test]
    fn a_node_that_left_cleanly_is_neither_fenced_nor_waited_for() {
        let left = LostNode {
            shutting_down: true,
            runs_nothing: true,
            ..lost(Some(7), false, true)
        };
        for by in [SettledBy::Fencing, SettledBy::Operator] {
            assert_eq!(
                decide(&left, &by),
                Decision::RecordDown {
                    how: "clean-shutdown",
                    detail: "it left cleanly, running nothing; its lease expired 7 ms ago".into()
                }
            );
        }
        // Still holding something, or its lease not yet expired: no.
        let busy = LostNode {
            runs_nothing: false,
            ..left.clone()
        };
        assert_eq!(decide(&busy, &SettledBy::Fencing), Decision::Fence);
        // Before its lease expired: waited for, and not fenced.
        let early = LostNode {
            lease_expired_ms: None,
            ..left
        };
        for by in [SettledBy::Fencing, SettledBy::Operator] {
            assert_eq!(
                decide(&early, &by),
                Decision::Wait {
                    why: "n2 left cleanly; waiting for its lease to expire".into()
                }
            );
        }
    }

    #[test]
    fn with_fencing_a_lost_node_is_fenced_at_once_lease_or_not() {
        assert_eq!(
            decide(&lost(None, false, true), &SettledBy::Fencing),
            Decision::Fence
        );
        assert!(matches!(
            decide(&lost(Some(5), true, false), &SettledBy::Fencing),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn without_fencing_an_expired_lease_alone_settles_nothing() {
        // A dead or paused daemon stops nothing: the lease expiring is
        // not evidence that the resources stopped.
        let d = decide(&lost(Some(60_000), false, true), &SettledBy::Operator);
        let Decision::Wait { why } = d else {
            panic!("{d:?}")
        };
        assert!(why.contains("tandem node confirm-down n2"), "{why}");
    }

    #[test]
    fn an_operator_confirmation_settles_once_the_lease_has_expired() {
        assert!(matches!(
            decide(&lost(None, true, true), &SettledBy::Operator),
            Decision::Wait { .. }
        ));
        assert_eq!(
            decide(&lost(Some(40), true, true), &SettledBy::Operator),
            Decision::RecordDown {
                how: "confirmed-down",
                detail: "an operator confirmed it down; its lease expired 40 ms ago".into()
            }
        );
    }

    #[test]
    fn a_watchdog_settles_two_and_a_half_timeouts_after_the_lease_expired() {
        let dog = |expired: Option<u64>| LostNode {
            watchdog_ms: Some(1000),
            ..lost(expired, false, false)
        };
        for by in [SettledBy::Fencing, SettledBy::Operator] {
            // Not before the lease expired, nor within 2.5 timeouts.
            for early in [None, Some(0), Some(2499)] {
                assert!(
                    matches!(decide(&dog(early), &by), Decision::Wait { .. }),
                    "{early:?}"
                );
            }
            assert_eq!(
                decide(&dog(Some(2500)), &by),
                Decision::RecordDown {
                    how: "watchdog",
                    detail: "its watchdog (1000 ms) has reset it: its lease expired 2500 ms ago"
                        .into()
                }
            );
        }
        // With fencing, a fence is still tried first (it is faster).
        let due = LostNode {
            fence_due: true,
            ..dog(Some(5))
        };
        assert_eq!(decide(&due, &SettledBy::Fencing), Decision::Fence);
        let Decision::Wait { why } = decide(&dog(Some(5)), &SettledBy::Operator) else {
            panic!()
        };
        assert_eq!(
            why,
            "n2 is lost; its watchdog resets it: its resources are recovered 2500 ms after its lease expired"
        );
    }
}
