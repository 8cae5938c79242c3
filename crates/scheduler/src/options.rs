//! Cluster options (`crm_config`) resolved to typed values, accepting the
//! pre-3.0 names (stonith-enabled, stop-orphan-resources, ...).

use tandem_model::{parse_bool, Configuration, Score};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoQuorumPolicy {
    Stop,
    Freeze,
    Ignore,
    Demote,
    Fence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementStrategy {
    Default,
    Utilization,
    Minimal,
    Balanced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStrategy {
    None,
    MigrateOnRed,
    OnlyGreen,
    Progressive,
    Custom,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub symmetric: bool,
    pub fencing_enabled: bool,
    pub fencing_action: String,
    pub no_quorum_policy: NoQuorumPolicy,
    pub placement_strategy: PlacementStrategy,
    pub stop_all_resources: bool,
    pub maintenance_mode: bool,
    pub startup_fencing: bool,
    pub stop_removed_resources: bool,
    pub health_strategy: HealthStrategy,
    pub health_red: Score,
    pub health_yellow: Score,
    pub health_green: Score,
    pub health_base: Score,
    pub shutdown_lock: bool,
    /// How long a shutdown lock holds, in seconds (0: until the node is back).
    pub shutdown_lock_limit_s: i64,
    pub have_watchdog: bool,
    /// Pre-1.1 cluster-wide defaults, used when rsc_defaults lacks them.
    pub default_stickiness: Option<String>,
    pub is_managed_default: Option<bool>,
    pub node_pending_timeout_s: Option<i64>,
}

impl Options {
    pub fn from_config(config: &Configuration, have_watchdog_attr: bool) -> Options {
        let get = |names: &[&str]| names.iter().find_map(|n| config.option(n));
        let flag =
            |names: &[&str], default: bool| get(names).and_then(parse_bool).unwrap_or(default);
        let fencing_enabled = flag(&["fencing-enabled", "stonith-enabled"], true);
        let mut no_quorum_policy = match get(&["no-quorum-policy"]).unwrap_or("stop") {
            "freeze" => NoQuorumPolicy::Freeze,
            "ignore" => NoQuorumPolicy::Ignore,
            "demote" => NoQuorumPolicy::Demote,
            "fence" | "suicide" => NoQuorumPolicy::Fence,
            _ => NoQuorumPolicy::Stop,
        };
        if no_quorum_policy == NoQuorumPolicy::Fence && !fencing_enabled {
            no_quorum_policy = NoQuorumPolicy::Stop;
        }
        let placement_strategy = match get(&["placement-strategy"]).unwrap_or("default") {
            "utilization" => PlacementStrategy::Utilization,
            "minimal" => PlacementStrategy::Minimal,
            "balanced" => PlacementStrategy::Balanced,
            _ => PlacementStrategy::Default,
        };
        let health_strategy = match get(&["node-health-strategy"]).unwrap_or("none") {
            "migrate-on-red" => HealthStrategy::MigrateOnRed,
            "only-green" => HealthStrategy::OnlyGreen,
            "progressive" => HealthStrategy::Progressive,
            "custom" => HealthStrategy::Custom,
            _ => HealthStrategy::None,
        };
        let score =
            |name: &str, default: Score| get(&[name]).and_then(Score::parse).unwrap_or(default);
        Options {
            symmetric: flag(&["symmetric-cluster"], true),
            fencing_enabled,
            fencing_action: get(&["fencing-action", "stonith-action"])
                .unwrap_or("reboot")
                .to_string(),
            no_quorum_policy,
            placement_strategy,
            stop_all_resources: flag(&["stop-all-resources"], false),
            maintenance_mode: flag(&["maintenance-mode"], false),
            startup_fencing: flag(&["startup-fencing"], true),
            stop_removed_resources: flag(
                &["stop-removed-resources", "stop-orphan-resources"],
                true,
            ),
            health_strategy,
            health_red: score("node-health-red", Score::NEG_INFINITY),
            health_yellow: score("node-health-yellow", Score::ZERO),
            health_green: score("node-health-green", Score::ZERO),
            health_base: score("node-health-base", Score::ZERO),
            shutdown_lock: flag(&["shutdown-lock"], false),
            shutdown_lock_limit_s: get(&["shutdown-lock-limit"])
                .and_then(tandem_model::parse_duration_ms)
                .map_or(0, |ms| (ms / 1000) as i64),
            have_watchdog: have_watchdog_attr || flag(&["have-watchdog"], false),
            default_stickiness: get(&["default-resource-stickiness"]).map(str::to_string),
            is_managed_default: get(&["is-managed-default"]).and_then(parse_bool),
            node_pending_timeout_s: get(&["node-pending-timeout"])
                .and_then(tandem_model::parse_duration_ms)
                .map(|ms| (ms / 1000) as i64),
        }
    }

    /// Parses a score as Pacemaker does for this cluster, resolving the
    /// health colours red/yellow/green by the node-health strategy.
    pub fn parse_score(&self, text: &str) -> Option<Score> {
        let colour = text.trim().to_ascii_lowercase();
        let (red, yellow, green) = match self.health_strategy {
            HealthStrategy::None => (Score::ZERO, Score::ZERO, Score::ZERO),
            HealthStrategy::MigrateOnRed => (Score::NEG_INFINITY, Score::ZERO, Score::ZERO),
            HealthStrategy::OnlyGreen => (Score::NEG_INFINITY, Score::NEG_INFINITY, Score::ZERO),
            HealthStrategy::Progressive | HealthStrategy::Custom => {
                (self.health_red, self.health_yellow, self.health_green)
            }
        };
        match colour.as_str() {
            "red" => Some(red),
            "yellow" => Some(yellow),
            "green" => Some(green),
            _ => Score::parse(text),
        }
    }
}
