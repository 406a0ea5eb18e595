//! A running bridge: one Zenoh session, one thread per route, one monitor thread that counts
//! peers and prints or writes the status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringway_channel::{
    ByteBatch, ByteReceiver, ByteSender, ChannelOptions, Error as ChannelError, Message, Receiver,
    Sender,
};
use zenoh::Session;

use crate::local::{Sink, Source};
use crate::status::{RouteStatus, Status};
use crate::{BridgeConfig, BridgeError, Direction, Fingerprint, Route, inbound, outbound, session};

/// Opens an outbound route's channel.
type OpenSource = fn(&Route, &ChannelOptions) -> Result<Box<dyn Source>, ChannelError>;
/// Opens an inbound route's channel.
type OpenSink = fn(&Route, &ChannelOptions) -> Result<Box<dyn Sink>, ChannelError>;

/// What a route's channel carries, and how to open its ends: [`MessageKind::bytes`] (what
/// the `ringway-bridge` command carries) or [`MessageKind::of`] a plain-data type.
#[derive(Debug, Clone)]
pub struct MessageKind {
    fingerprint: Fingerprint,
    size: Option<usize>,
    source: OpenSource,
    sink: OpenSink,
}

impl MessageKind {
    /// Byte channels ([`ByteSender`] / [`ByteReceiver`]).
    #[must_use]
    pub fn bytes() -> MessageKind {
        MessageKind {
            fingerprint: Fingerprint::bytes(),
            size: None,
            source: |route, opts| {
                let rx = if route.create {
                    ByteReceiver::create(route.channel.as_str(), opts)?
                } else {
                    ByteReceiver::open(route.channel.as_str(), opts)?
                };
                Ok(Box::new((rx, ByteBatch::new())))
            },
            sink: |route, opts| {
                let tx = if route.create {
                    ByteSender::create(route.channel.as_str(), opts)?
                } else {
                    ByteSender::open(route.channel.as_str(), opts)?
                };
                Ok(Box::new(tx))
            },
        }
    }

    /// Typed channels of `T` ([`Sender<T>`] / [`Receiver<T>`]); samples carry `T`'s
    /// [`Fingerprint`], and an inbound route refuses another type's.
    #[must_use]
    pub fn of<T: Message + Send>() -> MessageKind {
        MessageKind {
            fingerprint: Fingerprint::of::<T>(None),
            size: Some(size_of::<T>()),
            source: |route, opts| {
                let rx = if route.create {
                    Receiver::<T>::create(route.channel.as_str(), opts)?
                } else {
                    Receiver::<T>::open(route.channel.as_str(), opts)?
                };
                Ok(Box::new((rx, Vec::new())))
            },
            sink: |route, opts| {
                let tx = if route.create {
                    Sender::<T>::create(route.channel.as_str(), opts)?
                } else {
                    Sender::<T>::open(route.channel.as_str(), opts)?
                };
                Ok(Box::new(tx))
            },
        }
    }
}

/// A running bridge. Dropping it stops it (see [`Bridge::stop`]).
#[derive(Debug)]
pub struct Bridge {
    session: Session,
    stop: Arc<AtomicBool>,
    status: Arc<Status>,
    routes: Vec<(String, JoinHandle<Result<(), BridgeError>>)>,
    monitor: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Starts a bridge whose routes all carry byte channels.
    ///
    /// # Errors
    ///
    /// The Zenoh session could not be opened. (A route whose channel cannot be opened or
    /// breaks later ends with its error, returned by [`stop`](Bridge::stop).)
    pub fn start(config: &BridgeConfig) -> Result<Bridge, BridgeError> {
        Bridge::start_with(config, |_| MessageKind::bytes())
    }

    /// Starts a bridge, with `kind` saying what each route's channel carries.
    ///
    /// # Errors
    ///
    /// As [`start`](Bridge::start).
    pub fn start_with(
        config: &BridgeConfig,
        kind: impl Fn(&Route) -> MessageKind,
    ) -> Result<Bridge, BridgeError> {
        let session = session::open(config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let statuses: Vec<_> = config
            .routes
            .iter()
            .map(|r| RouteStatus::new(r.label()))
            .collect();
        let status = Arc::new(Status {
            routes: statuses.clone(),
            peers: Default::default(),
        });
        let mut routes = Vec::new();
        for (route, route_status) in config.routes.iter().zip(statuses) {
            let (route, kind, session, stop) = (
                route.clone(),
                kind(route),
                session.clone(),
                Arc::clone(&stop),
            );
            let label = route.label();
            let thread = std::thread::Builder::new()
                .name(format!("route {}", route.key))
                .spawn(move || run_route(&session, &route, &kind, &route_status, &stop))
                .map_err(|e| BridgeError::io(format!("{label}: start its thread"), e))?;
            routes.push((label, thread));
        }
        let monitor = {
            let (session, status, stop, config) = (
                session.clone(),
                Arc::clone(&status),
                Arc::clone(&stop),
                config.clone(),
            );
            std::thread::Builder::new()
                .name("status".into())
                .spawn(move || monitor(&session, &status, &stop, &config))
                .ok()
        };
        Ok(Bridge {
            session,
            stop,
            status,
            routes,
            monitor,
        })
    }

    /// The counters now.
    #[must_use]
    pub fn status(&self) -> crate::StatusSnapshot {
        self.status.snapshot()
    }

    /// The flag that stops the bridge when raised (for a signal-handling thread).
    #[must_use]
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Whether a route has ended (with an error, or because the bridge is stopping).
    #[must_use]
    pub fn route_ended(&self) -> bool {
        self.routes.iter().any(|(_, t)| t.is_finished())
    }

    /// Stops every route, closes the session and returns the first route's error, if any.
    ///
    /// # Errors
    ///
    /// The first error a route ended with.
    pub fn stop(mut self) -> Result<(), BridgeError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), BridgeError> {
        self.stop.store(true, Relaxed);
        let mut first = Ok(());
        for (label, thread) in self.routes.drain(..) {
            let result = thread.join().unwrap_or_else(|_| {
                Err(BridgeError::Local {
                    route: label,
                    message: "its thread panicked".into(),
                })
            });
            if first.is_ok() {
                first = result;
            }
        }
        if let Some(m) = self.monitor.take() {
            let _ = m.join();
        }
        let _ = zenoh::Wait::wait(self.session.close());
        first
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if !self.routes.is_empty() {
            let _ = self.shutdown();
        }
    }
}

fn run_route(
    session: &Session,
    route: &Route,
    kind: &MessageKind,
    status: &RouteStatus,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    let mut opts = ChannelOptions::new().open_timeout(Duration::from_millis(500));
    if let Some(n) = route.capacity {
        opts = opts.capacity(n);
    }
    if let Some(n) = route.max_message.filter(|_| kind.size.is_none()) {
        opts = opts.max_message(n);
    }
    let channel_error = |source| BridgeError::Channel {
        route: route.label(),
        source,
    };
    // Open waits for the local peer's create; retry until it comes or the bridge stops.
    let mut told = false;
    loop {
        let opened = match route.direction {
            Direction::Out => (kind.source)(route, &opts).map(Ok),
            Direction::In => (kind.sink)(route, &opts).map(Err),
        };
        match opened {
            Ok(Ok(source)) => {
                return outbound::run(session, route, &kind.fingerprint, source, status, stop);
            }
            Ok(Err(sink)) => {
                return inbound::run(
                    session,
                    route,
                    &kind.fingerprint,
                    kind.size,
                    sink,
                    status,
                    stop,
                );
            }
            Err(ChannelError::NotFound { .. }) if !route.create && !stop.load(Relaxed) => {
                if !told {
                    eprintln!(
                        "ringway-bridge: {}: waiting for channel {} to be created",
                        route.label(),
                        route.channel
                    );
                    told = true;
                }
            }
            Err(ChannelError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(channel_error(e)),
        }
    }
}

fn monitor(session: &Session, status: &Status, stop: &AtomicBool, config: &BridgeConfig) {
    let tick = Duration::from_millis(100);
    let mut last_print = Instant::now();
    loop {
        let stopping = stop.load(Relaxed);
        status.peers.store(session::peers(session), Relaxed);
        let snap = status.snapshot();
        if let Some(path) = &config.status_file {
            let tmp = path.with_extension("tmp");
            if std::fs::write(&tmp, snap.to_file_text()).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
        let due = config
            .status_interval
            .is_some_and(|every| last_print.elapsed() >= every || stopping);
        if due {
            eprintln!("ringway-bridge: {snap}");
            last_print = Instant::now();
        }
        if stopping {
            return;
        }
        std::thread::sleep(tick);
    }
}
