//! The bridge's Zenoh session: peer or client mode, explicit endpoints, no scouting.

use zenoh::{Session, Wait};

use crate::{BridgeConfig, BridgeError, SessionMode};

/// The Zenoh configuration of `config`: its mode and endpoints; multicast scouting and gossip
/// off (peers are found only at the endpoints given, so a bridge never links to a stranger on
/// the same network); connections retried every 0.2 s to 1 s; the lease, and a reliable
/// route's longest block on a full far side before Zenoh closes the session, both
/// `config.lease`.
///
/// # Errors
///
/// Zenoh refuses a value (the error names it).
pub fn zenoh_config(config: &BridgeConfig) -> Result<zenoh::Config, BridgeError> {
    let mut z = zenoh::Config::default();
    let lease_ms = config.lease.as_millis().max(1);
    let json = |list: &[String]| {
        let quoted: Vec<String> = list.iter().map(|e| format!("{e:?}")).collect();
        format!("[{}]", quoted.join(","))
    };
    let mode = match config.mode {
        SessionMode::Peer => "\"peer\"",
        SessionMode::Client => "\"client\"",
    };
    let settings = [
        ("mode", mode.to_owned()),
        ("listen/endpoints", json(&config.listen)),
        ("connect/endpoints", json(&config.connect)),
        ("scouting/multicast/enabled", "false".to_owned()),
        ("scouting/gossip/enabled", "false".to_owned()),
        (
            "connect/retry",
            "{period_init_ms: 200, period_max_ms: 1000, period_increase_factor: 2}".to_owned(),
        ),
        ("transport/link/tx/lease", lease_ms.to_string()),
        (
            "transport/link/tx/queue/congestion_control/block/wait_before_close",
            (lease_ms * 1000).to_string(),
        ),
    ];
    for (key, value) in settings {
        z.insert_json5(key, &value)
            .map_err(|e| BridgeError::zenoh(format!("set {key} = {value}"), e))?;
    }
    Ok(z)
}

/// Opens the session `config` describes.
///
/// # Errors
///
/// Zenoh could not open it (most often: an endpoint to listen on is taken or not an address
/// of this host).
pub fn open(config: &BridgeConfig) -> Result<Session, BridgeError> {
    let z = zenoh_config(config)?;
    zenoh::open(z).wait().map_err(|e| {
        BridgeError::zenoh(
            format!(
                "open a {:?} session listening on {:?}, connecting to {:?} (is a listen \
                 endpoint in use, or not an address of this host?)",
                config.mode, config.listen, config.connect
            ),
            e,
        )
    })
}

/// How many peers (or routers) the session is connected to now.
pub(crate) fn peers(session: &Session) -> u64 {
    let peers = session.info().peers_zid().wait().count();
    let routers = session.info().routers_zid().wait().count();
    (peers + routers) as u64
}
