//! What a bridge does: its Zenoh session (mode, endpoints) and its routes, from flags or from
//! a small file of `key = value` lines.
//!
//! ```text
//! # host A: publish the local channel /ticks, listen for the other host's bridge
//! mode = peer
//! listen = tcp/10.0.0.1:7447
//! out = /ticks=ringway/ticks
//! in = ringway/orders=/orders,create,capacity=4096
//! status_interval = 1s
//! ```
//!
//! A route is `CHANNEL=KEY` (out: from the local channel to the key expression) or
//! `KEY=CHANNEL` (in: from the key expression to the local channel), followed by options
//! separated by commas: `lossy` (drop and count instead of back-pressure), `create` (the
//! bridge creates the channel instead of opening the one its local peer created),
//! `capacity=N` and `max_message=N` (for `create`).

use std::path::PathBuf;
use std::time::Duration;

use crate::BridgeError;

/// Whether the bridge's Zenoh session is a peer (talks to other peers directly) or a client
/// (talks through a router).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    /// Zenoh peer mode: listen and connect to other peers at the given endpoints.
    Peer,
    /// Zenoh client mode: connect to a router.
    Client,
}

/// Which way a route carries messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a local ringway channel to a Zenoh key expression.
    Out,
    /// From a Zenoh key expression to a local ringway channel.
    In,
}

/// What a route does when the far side cannot keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Zenoh reliable with congestion control *block*; the inbound bridge blocks on a full
    /// channel, so the outbound bridge stops reading its ring and the local sender sees a full
    /// channel. Nothing is dropped while the session lives.
    #[default]
    Reliable,
    /// Zenoh congestion control *drop*; the inbound bridge drops (and counts) what does not
    /// fit its channel. For telemetry, where fresh beats complete.
    Lossy,
}

/// One channel carried one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Which way.
    pub direction: Direction,
    /// The local channel's POSIX shm name, e.g. `/ticks`.
    pub channel: String,
    /// The Zenoh key expression, e.g. `ringway/ticks`.
    pub key: String,
    /// Reliable (the default) or lossy.
    pub delivery: Delivery,
    /// Create the local channel instead of opening it.
    pub create: bool,
    /// Capacity in messages, for `create`.
    pub capacity: Option<usize>,
    /// Largest message in bytes, for `create`.
    pub max_message: Option<usize>,
}

impl Route {
    /// How the route is named in status lines and errors: `out /ticks -> ringway/ticks`.
    #[must_use]
    pub fn label(&self) -> String {
        match self.direction {
            Direction::Out => format!("out {} -> {}", self.channel, self.key),
            Direction::In => format!("in {} -> {}", self.key, self.channel),
        }
    }

    /// Parses `CHANNEL=KEY[,option...]` (out) or `KEY=CHANNEL[,option...]` (in). Options:
    /// `lossy` (drop and count instead of back-pressure), `reliable` (the default), `create`
    /// (the bridge creates the channel instead of opening the one its local peer created),
    /// `capacity=N` and `max_message=N` (for `create`).
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with `spec` and what to write.
    pub fn parse(direction: Direction, spec: &str) -> Result<Route, String> {
        let mut parts = spec.split(',').map(str::trim);
        let pair = parts.next().unwrap_or("");
        let shape = match direction {
            Direction::Out => "CHANNEL=KEY, e.g. /ticks=ringway/ticks",
            Direction::In => "KEY=CHANNEL, e.g. ringway/ticks=/ticks",
        };
        let Some((left, right)) = pair.split_once('=') else {
            return Err(format!("route {spec:?}: expected {shape}"));
        };
        let (channel, key) = match direction {
            Direction::Out => (left.trim(), right.trim()),
            Direction::In => (right.trim(), left.trim()),
        };
        if !channel.starts_with('/') || channel.len() < 2 || channel[1..].contains('/') {
            return Err(format!(
                "route {spec:?}: channel {channel:?} is not a POSIX shm name (one leading \
                 slash, no other: /ticks); expected {shape}"
            ));
        }
        if let Err(e) = zenoh::key_expr::KeyExpr::try_from(key.to_owned()) {
            return Err(format!(
                "route {spec:?}: {key:?} is not a Zenoh key expression: {e}"
            ));
        }
        let mut route = Route {
            direction,
            channel: channel.to_owned(),
            key: key.to_owned(),
            delivery: Delivery::Reliable,
            create: false,
            capacity: None,
            max_message: None,
        };
        for option in parts {
            let number = |value: &str| {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        format!("route {spec:?}: {option:?} needs a positive whole number")
                    })
            };
            match option.split_once('=') {
                None if option == "lossy" => route.delivery = Delivery::Lossy,
                None if option == "reliable" => route.delivery = Delivery::Reliable,
                None if option == "create" => route.create = true,
                Some(("capacity", v)) => route.capacity = Some(number(v)?),
                Some(("max_message", v)) => route.max_message = Some(number(v)?),
                _ => {
                    return Err(format!(
                        "route {spec:?}: unknown option {option:?} (known: lossy, reliable, \
                         create, capacity=N, max_message=N)"
                    ));
                }
            }
        }
        Ok(route)
    }
}

/// Everything a bridge process does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Peer (the default) or client.
    pub mode: SessionMode,
    /// Zenoh endpoints to listen on, e.g. `tcp/10.0.0.1:7447`.
    pub listen: Vec<String>,
    /// Zenoh endpoints to connect to (retried until they answer).
    pub connect: Vec<String>,
    /// The routes.
    pub routes: Vec<Route>,
    /// Print a status line this often (to stderr); `None`: never.
    pub status_interval: Option<Duration>,
    /// Write the status to this file (replaced whole, atomically) at every interval and when
    /// the bridge stops.
    pub status_file: Option<PathBuf>,
    /// Zenoh's lease: a peer silent this long is taken for dead and its session closed; a
    /// reliable route blocked this long on a full far side closes the session too.
    pub lease: Duration,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            mode: SessionMode::Peer,
            listen: Vec::new(),
            connect: Vec::new(),
            routes: Vec::new(),
            status_interval: None,
            status_file: None,
            lease: Duration::from_secs(10),
        }
    }
}

impl BridgeConfig {
    /// Reads a configuration file of `key = value` lines (`#` starts a comment): the
    /// settings [`set`](BridgeConfig::set) takes, e.g.
    ///
    /// ```text
    /// mode = peer
    /// listen = tcp/10.0.0.1:7447
    /// out = /ticks=ringway/ticks
    /// in = ringway/orders=/orders,create,capacity=4096
    /// status_interval = 1s
    /// ```
    ///
    /// A route is `CHANNEL=KEY` (out) or `KEY=CHANNEL` (in), then options separated by
    /// commas (see [`Route::parse`]).
    ///
    /// # Errors
    ///
    /// The file cannot be read, or a line is wrong (the error names the file and line).
    pub fn from_file(path: impl Into<PathBuf>) -> Result<BridgeConfig, BridgeError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            BridgeError::config(
                Some(&path),
                0,
                format!("cannot read the configuration: {e}"),
            )
        })?;
        let mut config = BridgeConfig::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(BridgeError::config(
                    Some(&path),
                    i + 1,
                    "expected `key = value`",
                ));
            };
            config
                .set(key.trim(), value.trim())
                .map_err(|m| BridgeError::config(Some(&path), i + 1, m))?;
        }
        Ok(config)
    }

    /// Sets one setting by its name in the file (`mode`, `listen`, `connect`, `out`, `in`,
    /// `status_interval`, `status_file`, `lease`); `listen`, `connect`, `out` and `in` add.
    ///
    /// # Errors
    ///
    /// A message saying what is wrong with the value, or that the name is unknown.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "mode" => {
                self.mode = match value {
                    "peer" => SessionMode::Peer,
                    "client" => SessionMode::Client,
                    _ => return Err(format!("mode {value:?}: expected peer or client")),
                }
            }
            "listen" => self.listen.push(endpoint(value)?),
            "connect" => self.connect.push(endpoint(value)?),
            "out" => self.routes.push(Route::parse(Direction::Out, value)?),
            "in" => self.routes.push(Route::parse(Direction::In, value)?),
            "status_interval" => self.status_interval = Some(duration(value)?),
            "status_file" => self.status_file = Some(PathBuf::from(value)),
            "lease" => self.lease = duration(value)?,
            _ => {
                return Err(format!(
                    "unknown setting {key:?} (known: mode, listen, connect, out, in, \
                     status_interval, status_file, lease)"
                ));
            }
        }
        Ok(())
    }
}

/// Checks the shape of a Zenoh endpoint: `tcp/HOST:PORT` (the only transport built in).
fn endpoint(value: &str) -> Result<String, String> {
    match value.split_once('/') {
        Some(("tcp", addr)) if addr.contains(':') => Ok(value.to_owned()),
        _ => Err(format!(
            "endpoint {value:?}: expected tcp/HOST:PORT, e.g. tcp/10.0.0.1:7447 (this bridge \
             is built with Zenoh's TCP transport only)"
        )),
    }
}

/// `1s`, `250ms`, or a bare number of seconds.
pub(crate) fn duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("duration {value:?}: expected e.g. 2s, 250ms or 1.5");
    if let Some(ms) = value.strip_suffix("ms") {
        return ms
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| bad());
    }
    let secs = value.strip_suffix('s').unwrap_or(value).trim();
    secs.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_both_ways() {
        let out = Route::parse(Direction::Out, "/ticks=ringway/ticks,lossy").unwrap();
        assert_eq!(
            (out.channel.as_str(), out.key.as_str()),
            ("/ticks", "ringway/ticks")
        );
        assert_eq!(out.delivery, Delivery::Lossy);
        let r#in = Route::parse(Direction::In, "a/b=/c,create,capacity=64").unwrap();
        assert_eq!((r#in.channel.as_str(), r#in.key.as_str()), ("/c", "a/b"));
        assert!(r#in.create);
        assert_eq!(r#in.capacity, Some(64));
        assert_eq!(r#in.label(), "in a/b -> /c");
    }

    #[test]
    fn bad_routes_say_what_to_write() {
        let e = Route::parse(Direction::Out, "ringway/ticks=/ticks").unwrap_err();
        assert!(e.contains("not a POSIX shm name"), "{e}");
        let e = Route::parse(Direction::Out, "/ticks").unwrap_err();
        assert!(e.contains("expected CHANNEL=KEY"), "{e}");
        let e = Route::parse(Direction::In, "a/b=/c,fast").unwrap_err();
        assert!(e.contains("unknown option \"fast\""), "{e}");
        let e = Route::parse(Direction::In, "a//b=/c").unwrap_err();
        assert!(e.contains("not a Zenoh key expression"), "{e}");
    }

    #[test]
    fn a_file_sets_everything_and_names_its_bad_line() {
        let dir =
            std::env::temp_dir().join(format!("ringway-bridge-config-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# comment\nmode = client\nconnect = tcp/10.0.0.1:7447\nout = /a=k/a\n\
             status_interval = 250ms\nlease = 3s\n",
        )
        .unwrap();
        let config = BridgeConfig::from_file(&dir).unwrap();
        assert_eq!(config.mode, SessionMode::Client);
        assert_eq!(config.connect, ["tcp/10.0.0.1:7447"]);
        assert_eq!(config.routes.len(), 1);
        assert_eq!(config.status_interval, Some(Duration::from_millis(250)));
        assert_eq!(config.lease, Duration::from_secs(3));
        std::fs::write(&dir, "mode = peer\nlisten = udp/1.2.3.4:5\n").unwrap();
        let e = BridgeConfig::from_file(&dir).unwrap_err().to_string();
        std::fs::remove_file(&dir).unwrap();
        assert!(e.ends_with(":2: endpoint \"udp/1.2.3.4:5\": expected tcp/HOST:PORT, e.g. tcp/10.0.0.1:7447 (this bridge is built with Zenoh's TCP transport only)"), "{e}");
    }
}
